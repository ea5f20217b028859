"""The status block: counts, percentage, ETA, conditions, bounded lists, and when to PATCH."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from qd_core.states import Stage, State
from qd_operator import status
from qd_operator.model import RangeState
from qd_operator.status import Facts, Plan, Progress

T0 = dt.datetime(2026, 1, 1, 10, 0, tzinfo=dt.UTC)
BOTH = (Stage.EXTRACT, Stage.EXCERPTS)


def progress(*, ranges: dict[RangeState, int] | None = None, extract: dict[State, int] | None = None,
             excerpts: dict[State, int] | None = None, total: int = 1000, stages: tuple[Stage, ...] = BOTH,
             **kw: Any) -> Progress:
    return Progress(stages=stages, planned_gazettes=total, ranges=ranges or {RangeState.PENDING: 2},
                    gazettes={Stage.EXTRACT: extract or {}, Stage.EXCERPTS: excerpts or {}}, planned_at=T0, **kw)


def compute(p: Progress | None, *, now: dt.datetime = T0, plan: Plan = Plan.PLANNED, suspended: bool = False,
            old: dict[str, Any] | None = None, message: str = "") -> dict[str, Any]:
    return status.compute(old, Facts(generation=3, suspended=suspended, plan=plan, now=now, plan_message=message,
                                     progress=p))


def cond(s: dict[str, Any], ctype: str) -> tuple[str, str]:
    (c,) = [c for c in s["conditions"] if c["type"] == ctype]
    return c["status"], c["reason"]


def big_status() -> dict[str, Any]:
    failed = [{"id": f"r{i:05d}aab", "low": i * 500, "high": i * 500 + 499, "stage": "excerpts",
               "reason": "ExitCode3: a service stayed unavailable beyond retries " + "x" * 400} for i in range(5000)]
    quarantined = [{"gazetteId": 10**9 + i, "filePath": "2704302/2024-01-01/" + "f" * 200 + ".pdf"}
                   for i in range(5000)]
    p = progress(ranges={RangeState.SUCCEEDED: 4000, RangeState.FAILED: 5000, RangeState.RUNNING: 1000},
                 extract={State.SUCCEEDED: 2_000_000, State.QUARANTINED: 5000}, total=5_000_000,
                 failed_ranges=failed, quarantined=quarantined)
    return compute(p, now=T0 + dt.timedelta(hours=5))


def test_counts_progress_and_done() -> None:
    p = progress(ranges={RangeState.SUCCEEDED: 3, RangeState.QUARANTINED: 1, RangeState.RUNNING: 2,
                         RangeState.SPLIT: 1, RangeState.FAILED: 1, RangeState.PENDING: 4},
                 extract={State.SUCCEEDED: 600, State.FAILED: 50, State.SKIPPED: 30, State.QUARANTINED: 2,
                          State.RUNNING: 8},
                 excerpts={State.SUCCEEDED: 400, State.FAILED: 10})
    s = compute(p)
    assert s["ranges"] == {"total": 12, "pending": 4, "running": 2, "succeeded": 4, "failed": 1, "split": 1}
    assert s["gazettes"] == {"total": 1000, "succeeded": 400, "failed": 60, "skipped": 30, "quarantined": 2,
                             "pending": 508}
    # extract: 682/1000 done; excerpts: 410 of the 918 extract passed on → (0.682 + 0.4466) / 2
    assert s["progress"] == "56%"
    assert s["done"] == "400/1000" and s["observedGeneration"] == 3


def test_single_stage_progress() -> None:
    s = compute(progress(stages=(Stage.EXTRACT,), extract={State.SUCCEEDED: 250}))
    assert s["progress"] == "25%" and s["done"] == "250/1000"


def test_progress_never_shows_100_before_the_end() -> None:
    s = compute(progress(stages=(Stage.EXTRACT,), extract={State.SUCCEEDED: 1000},
                         ranges={RangeState.RUNNING: 1}))
    assert s["progress"] == "99%"


def test_eta_from_throughput_since_start() -> None:
    s = compute(progress(stages=(Stage.EXTRACT,), extract={State.SUCCEEDED: 250}), now=T0 + dt.timedelta(hours=1))
    assert s["startTime"] == "2026-01-01T10:00:00Z"
    assert s["eta"] == "2026-01-01T14:00:00Z"  # a quarter in an hour → four hours in all


def test_no_eta_without_progress_or_when_suspended() -> None:
    assert "eta" not in compute(progress(), now=T0 + dt.timedelta(hours=1))
    p = progress(stages=(Stage.EXTRACT,), extract={State.SUCCEEDED: 250})
    assert "eta" not in compute(p, now=T0 + dt.timedelta(hours=1), suspended=True)


def test_running_conditions() -> None:
    s = compute(progress(), message="1000 gazettes in 2 ranges")
    assert [c["type"] for c in s["conditions"]] == list(status.CONDITION_TYPES)
    assert cond(s, "Planned") == ("True", "Planned")
    assert cond(s, "Progressing") == ("True", "RangesRunning")
    assert cond(s, "Succeeded") == ("Unknown", "InProgress")
    assert cond(s, "Suspended") == ("False", "NotSuspended")
    assert cond(s, "Degraded") == ("False", "NoFailedRanges") and cond(s, "Failed") == ("False", "NoFailure")
    assert all(c["observedGeneration"] == 3 for c in s["conditions"])


def test_finished_run_succeeds() -> None:
    s = compute(progress(ranges={RangeState.SUCCEEDED: 2, RangeState.QUARANTINED: 1}), now=T0 + dt.timedelta(hours=2))
    assert cond(s, "Succeeded") == ("True", "AllRangesDone") and cond(s, "Progressing") == ("False", "Finished")
    assert s["progress"] == "100%" and s["completionTime"] == "2026-01-01T12:00:00Z" and "eta" not in s


def test_failed_ranges_degrade_the_run() -> None:
    p = progress(ranges={RangeState.SUCCEEDED: 2, RangeState.FAILED: 1})
    s = compute(p)
    assert cond(s, "Succeeded") == ("False", "RangesFailed") and cond(s, "Degraded") == ("True", "RangesFailed")
    assert cond(s, "Failed") == ("False", "NoFailure")
    all_failed = compute(progress(ranges={RangeState.FAILED: 3}))
    assert cond(all_failed, "Failed") == ("True", "AllRangesFailed")


def test_degraded_while_still_running() -> None:
    s = compute(progress(ranges={RangeState.RUNNING: 2, RangeState.FAILED: 1}))
    assert cond(s, "Degraded") == ("True", "RangesFailed") and cond(s, "Succeeded") == ("Unknown", "InProgress")


def test_plan_outcomes() -> None:
    empty = compute(None, plan=Plan.EMPTY)
    assert cond(empty, "Succeeded") == ("True", "NothingToDo") and cond(empty, "Planned") == ("True", "NothingToDo")
    assert empty["progress"] == "100%"
    overlap = compute(None, plan=Plan.OVERLAP, message="overlaps active run qd/other")
    assert cond(overlap, "Planned") == ("False", "SelectionOverlaps")
    assert [c["message"] for c in overlap["conditions"] if c["type"] == "Planned"] == ["overlaps active run qd/other"]
    invalid = compute(None, plan=Plan.INVALID, message="spec.parallelism: 0 must be between 1 and 256")
    assert cond(invalid, "Failed") == ("True", "InvalidSpec") and cond(invalid, "Planned") == ("False", "InvalidSpec")
    assert cond(compute(None, plan=Plan.NOT_YET), "Planned") == ("Unknown", "Planning")


def test_suspended_run() -> None:
    s = compute(progress(), suspended=True)
    assert cond(s, "Suspended") == ("True", "Suspended") and cond(s, "Progressing") == ("False", "Suspended")


def test_transition_time_is_kept_while_the_status_holds() -> None:
    first = compute(progress())
    later = compute(progress(extract={State.SUCCEEDED: 10}), now=T0 + dt.timedelta(minutes=5), old=first)
    assert later["conditions"] == first["conditions"]
    suspended = compute(progress(), now=T0 + dt.timedelta(minutes=9), old=later, suspended=True)
    times = {c["type"]: c["lastTransitionTime"] for c in suspended["conditions"]}
    assert times["Suspended"] == times["Progressing"] == "2026-01-01T10:09:00Z"
    assert times["Planned"] == "2026-01-01T10:00:00Z"


def test_start_and_completion_times_are_kept() -> None:
    old = {"startTime": "2025-12-31T00:00:00Z", "completionTime": "2026-01-01T01:00:00Z"}
    s = compute(progress(ranges={RangeState.SUCCEEDED: 1}), old=old, now=T0 + dt.timedelta(days=1))
    assert (s["startTime"], s["completionTime"]) == (old["startTime"], old["completionTime"])


def test_patch_only_what_changed() -> None:
    first = compute(progress(stages=(Stage.EXTRACT,), extract={State.SUCCEEDED: 250}), now=T0 + dt.timedelta(hours=1))
    same = compute(progress(stages=(Stage.EXTRACT,), extract={State.SUCCEEDED: 250}),
                   now=T0 + dt.timedelta(hours=1, seconds=10), old=first)
    assert same["eta"] != first["eta"]  # the ETA drifted by 40 s …
    assert not status.changed(first, same) and status.patch(first, same) == {}  # … which is noise
    moved = compute(progress(stages=(Stage.EXTRACT,), extract={State.SUCCEEDED: 500}),
                    now=T0 + dt.timedelta(hours=1, minutes=5), old=first)
    assert set(status.patch(first, moved)) == {"gazettes", "progress", "done", "eta"}
    assert status.changed(None, first)


def test_patch_deletes_dropped_keys() -> None:
    running = compute(progress(stages=(Stage.EXTRACT,), extract={State.SUCCEEDED: 250}), now=T0 + dt.timedelta(hours=1))
    suspended = compute(progress(stages=(Stage.EXTRACT,), extract={State.SUCCEEDED: 250}), suspended=True,
                        now=T0 + dt.timedelta(hours=1), old=running)
    assert status.patch(running, suspended)["eta"] is None


def test_transition_events() -> None:
    planned = compute(progress(), message="1000 gazettes in 2 ranges")
    assert [(e.reason, e.message) for e in status.transition_events(None, planned)] == [
        ("Planned", "1000 gazettes in 2 ranges")]
    assert status.transition_events(planned, compute(progress(), old=planned)) == []
    suspended = compute(progress(), suspended=True, old=planned)
    assert [e.reason for e in status.transition_events(planned, suspended)] == ["Suspended"]
    assert [e.reason for e in status.transition_events(suspended, compute(progress(), old=suspended))] == ["Resumed"]
    done = compute(progress(ranges={RangeState.SUCCEEDED: 2}), old=planned)
    assert [e.reason for e in status.transition_events(planned, done)] == ["RunSucceeded"]
    degraded = compute(progress(ranges={RangeState.SUCCEEDED: 1, RangeState.FAILED: 1}), old=planned)
    assert [e.reason for e in status.transition_events(planned, degraded)] == ["RunDegraded"]
    overlap = compute(None, plan=Plan.OVERLAP, message="overlaps qd/a")
    assert [(e.reason, e.warning) for e in status.transition_events(None, overlap)] == [("SelectionOverlaps", True)]
    assert status.transition_events(overlap, compute(None, plan=Plan.OVERLAP, old=overlap, message="x")) == []
    assert [e.reason for e in status.transition_events(None, compute(None, plan=Plan.EMPTY))] == ["NothingToDo"]


def test_status_of_a_huge_run_stays_small() -> None:
    s = big_status()
    assert len(s["failedRanges"]) == 20 and len(s["quarantined"]) == 20
    assert s["ranges"]["total"] == 10_000
    size = len(json.dumps(s).encode())
    assert size < 64 * 1024, size
