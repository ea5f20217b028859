"""The run's status block, computed from counts (pure), and whether it is worth a PATCH.

The status stays bounded whatever the run's size: counts, a percentage, an ETA and at most 20
failed ranges and 20 quarantined gazettes; the per-gazette truth stays in PostgreSQL. Conditions
keep their lastTransitionTime while their status does not change, and an ETA that moved by less
than a minute is not a change, so a timer does not PATCH the run every tick.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from typing import Any

from qd_core.states import Stage, State
from qd_operator.model import RangeState
from qd_operator.reactions import Event

MAX_LISTED = 20
ETA_TOLERANCE = dt.timedelta(seconds=60)
CONDITION_TYPES = ("Planned", "Progressing", "Suspended", "Degraded", "Succeeded", "Failed")
_DONE_STATES = (State.SUCCEEDED, State.FAILED, State.SKIPPED, State.QUARANTINED)


class Plan(enum.StrEnum):
    """How planning went (planning.plan's outcome, or why it did not run)."""

    NOT_YET = "NotYet"
    PLANNED = "Planned"
    EMPTY = "NothingToDo"
    OVERLAP = "SelectionOverlaps"
    INVALID = "InvalidSpec"


@dataclasses.dataclass(frozen=True)
class Progress:
    """What PostgreSQL knows about a run (progress.load builds it)."""

    stages: tuple[Stage, ...]
    planned_gazettes: int = 0
    ranges: Mapping[RangeState, int] = dataclasses.field(default_factory=dict)
    gazettes: Mapping[Stage, Mapping[State, int]] = dataclasses.field(default_factory=dict)
    failed_ranges: Sequence[Mapping[str, Any]] = ()  #: {id, low, high, stage, reason}
    quarantined: Sequence[Mapping[str, Any]] = ()  #: {gazetteId, filePath}
    planned_at: dt.datetime | None = None

    @property
    def unfinished_ranges(self) -> int:
        return self.ranges.get(RangeState.PENDING, 0) + self.ranges.get(RangeState.RUNNING, 0)


@dataclasses.dataclass(frozen=True)
class Facts:
    generation: int
    suspended: bool
    plan: Plan
    now: dt.datetime
    plan_message: str = ""
    progress: Progress | None = None


def fraction_done(p: Progress) -> float:
    """Share of the work done, averaged over stages (excerpts expect only what extract passed on)."""
    total = p.planned_gazettes
    if total <= 0:
        return 1.0
    shares: list[float] = []
    lost = 0
    for stage in p.stages:
        counts = p.gazettes.get(stage, {})
        expected = total - lost
        done = sum(counts.get(s, 0) for s in _DONE_STATES)
        shares.append(1.0 if expected <= 0 else min(1.0, done / expected))
        lost += sum(counts.get(s, 0) for s in (State.FAILED, State.SKIPPED, State.QUARANTINED))
    return sum(shares) / len(shares) if shares else 0.0


def gazette_counts(p: Progress) -> dict[str, int]:
    last = p.stages[-1] if p.stages else Stage.EXTRACT
    total = p.planned_gazettes

    def summed(state: State) -> int:
        return sum(p.gazettes.get(stage, {}).get(state, 0) for stage in p.stages)

    counts = {"total": total, "succeeded": p.gazettes.get(last, {}).get(State.SUCCEEDED, 0),
              "failed": summed(State.FAILED), "skipped": summed(State.SKIPPED),
              "quarantined": summed(State.QUARANTINED)}
    counts["pending"] = max(0, total - sum(v for k, v in counts.items() if k != "total"))
    return counts


def range_counts(p: Progress) -> dict[str, int]:
    r = p.ranges
    return {"total": sum(r.values()), "pending": r.get(RangeState.PENDING, 0),
            "running": r.get(RangeState.RUNNING, 0),
            "succeeded": r.get(RangeState.SUCCEEDED, 0) + r.get(RangeState.QUARANTINED, 0),
            "failed": r.get(RangeState.FAILED, 0), "split": r.get(RangeState.SPLIT, 0)}


def compute(old: Mapping[str, Any] | None, facts: Facts) -> dict[str, Any]:
    """The whole status block for this moment."""
    old = old or {}
    p = facts.progress
    out: dict[str, Any] = {"observedGeneration": facts.generation}
    finished = facts.plan is Plan.EMPTY or (
        facts.plan is Plan.PLANNED and p is not None and p.unfinished_ranges == 0)
    failed_ranges = range_counts(p)["failed"] if p else 0
    if p is not None:
        out["ranges"] = range_counts(p)
        out["gazettes"] = gazette_counts(p)
        fraction = 1.0 if finished else min(fraction_done(p), 0.99)
        out["progress"] = f"{int(fraction * 100)}%"
        out["done"] = f"{out['gazettes']['succeeded']}/{out['gazettes']['total']}"
        out["failedRanges"] = [dict(r) for r in p.failed_ranges[:MAX_LISTED]]
        out["quarantined"] = [dict(q) for q in p.quarantined[:MAX_LISTED]]
        start = old.get("startTime") or _iso(p.planned_at or facts.now)
        out["startTime"] = start
        if finished:
            out["completionTime"] = old.get("completionTime") or _iso(facts.now)
        elif not facts.suspended and 0 < fraction < 1:
            elapsed = facts.now - _parse(start)
            if elapsed.total_seconds() > 0:
                out["eta"] = _iso(_parse(start) + elapsed / fraction)
    elif facts.plan is Plan.EMPTY:
        out["progress"] = "100%"
        out["completionTime"] = old.get("completionTime") or _iso(facts.now)
    succeeded_ranges = out.get("ranges", {}).get("succeeded", 0)
    wanted = _conditions(facts, finished, failed_ranges, succeeded_ranges)
    out["conditions"] = _keep_times(old.get("conditions") or [], wanted, facts)
    return out


def _conditions(facts: Facts, finished: bool, failed: int, succeeded: int) -> list[tuple[str, str, str, str]]:
    """(type, status, reason, message) for every condition type."""
    plan, msg = facts.plan, facts.plan_message
    planned = {Plan.PLANNED: ("True", "Planned", msg or "ranges planned"),
               Plan.EMPTY: ("True", "NothingToDo", msg or "no gazette matches the selection"),
               Plan.OVERLAP: ("False", "SelectionOverlaps", msg),
               Plan.INVALID: ("False", "InvalidSpec", msg),
               Plan.NOT_YET: ("Unknown", "Planning", msg or "not planned yet")}[plan]
    if plan is Plan.INVALID:
        failed_c = ("True", "InvalidSpec", msg)
    elif finished and failed and not succeeded:
        failed_c = ("True", "AllRangesFailed", f"all {failed} ranges failed")
    else:
        failed_c = ("False", "NoFailure", "")
    if finished:
        if failed:
            succeeded_c = ("False", "RangesFailed", f"{failed} ranges failed; annotate rerun-failed to retry them")
        else:
            succeeded_c = ("True", "NothingToDo" if plan is Plan.EMPTY else "AllRangesDone", "every range is done")
        progressing = ("False", "Finished", "")
    elif plan in (Plan.INVALID, Plan.OVERLAP, Plan.NOT_YET):
        succeeded_c = ("Unknown", "NotPlanned", "")
        progressing = ("False", "NotPlanned", msg)
    else:
        succeeded_c = ("Unknown", "InProgress", "")
        progressing = ("False", "Suspended", "spec.suspend is true") if facts.suspended else (
            "True", "RangesRunning", "")
    suspended = ("True", "Suspended", "spec.suspend is true") if facts.suspended else ("False", "NotSuspended", "")
    degraded = ("True", "RangesFailed", f"{failed} ranges failed") if failed else ("False", "NoFailedRanges", "")
    by_type = {"Planned": planned, "Progressing": progressing, "Suspended": suspended, "Degraded": degraded,
               "Succeeded": succeeded_c, "Failed": failed_c}
    return [(t, *by_type[t]) for t in CONDITION_TYPES]


def _keep_times(old: Sequence[Mapping[str, Any]], wanted: list[tuple[str, str, str, str]],
                facts: Facts) -> list[dict[str, Any]]:
    previous = {c.get("type"): c for c in old}
    out = []
    for ctype, cstatus, reason, message in wanted:
        before = previous.get(ctype)
        keep = before is not None and before.get("status") == cstatus and before.get("lastTransitionTime")
        out.append({"type": ctype, "status": cstatus, "reason": reason, "message": message,
                    "lastTransitionTime": before["lastTransitionTime"] if keep and before else _iso(facts.now),
                    "observedGeneration": facts.generation})
    return out


def patch(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> dict[str, Any]:
    """The merge patch from old to new: changed top-level keys, None for keys new dropped.

    Empty when nothing but the ETA moved (by less than a minute): no PATCH then.
    """
    old = old or {}
    out: dict[str, Any] = {}
    for key, value in new.items():
        if old.get(key) != value and not (key == "eta" and _close(old.get(key), value)):
            out[key] = value
    for key in ("eta", "completionTime"):
        if key in old and key not in new:
            out[key] = None
    return out


def changed(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether `new` is worth a PATCH (timestamps-only noise is not)."""
    return bool(patch(old, new))


def transition_events(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> list[Event]:
    """Events for the conditions that changed (RunSucceeded, RunDegraded, Suspended, Resumed, …)."""
    before = {c["type"]: c for c in (old or {}).get("conditions") or []}
    events: list[Event] = []
    for c in new.get("conditions") or []:
        prev = before.get(c["type"], {})
        if prev.get("status") == c["status"] and prev.get("reason") == c["reason"]:
            continue
        key = (c["type"], c["status"], c["reason"])
        if key == ("Planned", "True", "Planned"):
            events.append(Event("Planned", c["message"]))
        elif key == ("Planned", "False", "SelectionOverlaps"):
            events.append(Event("SelectionOverlaps", c["message"], True))
        elif key in (("Planned", "True", "NothingToDo"), ("Succeeded", "True", "AllRangesDone")):
            events.append(Event("NothingToDo" if c["type"] == "Planned" else "RunSucceeded",
                                c["message"] or "every range is done"))
        elif key == ("Succeeded", "False", "RangesFailed"):
            events.append(Event("RunDegraded", c["message"], True))
        elif c["type"] == "Suspended" and (c["status"] == "True" or prev.get("status") == "True"):
            events.append(Event("Suspended" if c["status"] == "True" else "Resumed",
                                "spec.suspend is true" if c["status"] == "True" else "spec.suspend is false"))
    return events


def _close(a: Any, b: Any) -> bool:
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    return abs(_parse(a) - _parse(b)) < ETA_TOLERANCE


def _iso(when: dt.datetime) -> str:
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _parse(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
