"""What to do with each range of a Job that finished or lost indexes (pure).

Kubernetes cannot match OOM in a podFailurePolicy reliably (the termination reason is not
standardised; exit 137 is any SIGKILL), so the Job fails such an index at once (FailIndex on 137)
and the operator reads the failed pod's termination state here: OOM → split, promote or
quarantine; anything else → the range failed (the Job's per-index backoff already retried it).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from qd_core.states import Stage
from qd_operator import indexes, jobs, model

#: What `qd-extract` exit codes mean (job_image/qd_extractor/cli.py).
EXIT_MEANINGS: Mapping[int, str] = {
    2: "bad configuration (the pod log names the variable)",
    3: "a service stayed unavailable beyond retries",
    143: "stopped by SIGTERM",
    137: "killed (SIGKILL, usually out of memory)",
}


class Action(enum.StrEnum):
    SUCCEED = "succeed"
    SPLIT = "split"
    PROMOTE = "promote"
    QUARANTINE = "quarantine"
    FAIL = "fail"


@dataclasses.dataclass(frozen=True)
class Event:
    """A Kubernetes Event to post on the run (reason is CamelCase)."""

    reason: str
    message: str
    warning: bool = False


@dataclasses.dataclass(frozen=True)
class Failure:
    """Why the last pod of an index failed."""

    index: int
    exit_code: int | None
    container_reason: str | None  #: containerStatuses[].state.terminated.reason, e.g. OOMKilled
    pod_reason: str | None  #: status.reason, e.g. DeadlineExceeded, Evicted

    @property
    def oom(self) -> bool:
        if self.pod_reason == "DeadlineExceeded":
            return False
        return self.container_reason == "OOMKilled" or self.exit_code == jobs.EXIT_OOM

    def describe(self) -> str:
        if self.oom:
            return "OOMKilled: the pod ran out of memory"
        if self.pod_reason == "DeadlineExceeded":
            return "DeadlineExceeded: the pod ran longer than activeDeadlineSeconds"
        if self.exit_code is not None:
            meaning = EXIT_MEANINGS.get(self.exit_code, self.container_reason or "failed")
            return f"ExitCode{self.exit_code}: {meaning}"
        return f"{self.pod_reason or self.container_reason or 'Unknown'}: the pod failed"


@dataclasses.dataclass(frozen=True)
class Decision:
    """The fate of one range; `reason` is stored on the range and shown in status.failedRanges."""

    range_id: str
    stage: Stage
    action: Action
    reason: str
    events: tuple[Event, ...] = ()


def classify(pod: Mapping[str, Any]) -> Failure | None:
    """The failure of one pod, or None if it did not fail or carries no index."""
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    raw_index = (meta.get("annotations") or {}).get(model.POD_INDEX) or (meta.get("labels") or {}).get(model.POD_INDEX)
    if raw_index is None or status.get("phase") != "Failed":
        return None
    terminated: Mapping[str, Any] = {}
    for cs in status.get("containerStatuses") or []:
        if cs.get("name") == model.CONTAINER:
            terminated = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get(
                "terminated") or {}
    code = terminated.get("exitCode")
    return Failure(int(raw_index), None if code is None else int(code), terminated.get("reason"),
                   status.get("reason"))


def index_failures(pods: Iterable[Mapping[str, Any]]) -> dict[int, Failure]:
    """The last failure of each index (pods ordered by finish, then creation time)."""
    def when(pod: Mapping[str, Any]) -> str:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            finished = ((cs.get("state") or {}).get("terminated") or {}).get("finishedAt")
            if finished:
                return str(finished)
        return str((pod.get("metadata") or {}).get("creationTimestamp") or "")

    out: dict[int, Failure] = {}
    for pod in sorted(pods, key=when):
        failure = classify(pod)
        if failure is not None:
            out[failure.index] = failure
    return out


def job_failed(job: model.JobLike) -> tuple[bool, str]:
    """Whether the Job failed as a whole, and its condition's reason and message."""
    failed = model.as_child_job(job).condition("Failed")
    if failed is None:
        return False, ""
    return True, f"{failed.reason or 'JobFailed'}: {failed.message or 'the Job failed'}"


def decide(job: model.JobLike, ranges: Sequence[model.RangeRow], pods: Iterable[Mapping[str, Any]], *,
           tiers: Sequence[str], max_split_depth: int, pending: Mapping[str, int] | None = None) -> list[Decision]:
    """Decisions for the running ranges of `job` whose index finished.

    `ranges` are the Job's rows (job_index set); `tiers` the stage's memory quantities;
    `pending` the live count of unfinished gazettes per range id (else the planned count).
    Ranges no longer running (already handled) get no decision, so calling this twice is safe.
    """
    view = model.as_child_job(job)
    completed = set(indexes.parse(view.completed_indexes))
    failed_indexes = set(indexes.parse(view.failed_indexes))
    failures = index_failures(pods)
    whole_job_failed, job_reason = job_failed(view)
    by_index = {r.job_index: r for r in ranges if r.job_index is not None}
    if not by_index:  # rows without indexes: fall back to the Job's annotation order
        by_id = {r.range_id: r for r in ranges}
        by_index = {i: by_id[rid] for i, rid in enumerate(view.range_ids) if rid in by_id}
    out: list[Decision] = []
    for index, row in sorted(by_index.items()):
        if row.state is not model.RangeState.RUNNING:
            continue
        if index in completed:
            out.append(Decision(row.range_id, row.stage, Action.SUCCEED, "Succeeded"))
        elif index in failed_indexes or (whole_job_failed and index in failures):
            failure = failures.get(index)
            if failure is not None and failure.oom:
                count = row.gazettes if pending is None else pending.get(row.range_id, row.gazettes)
                out.append(_on_oom(row, count, tiers, max_split_depth))
            else:
                reason = failure.describe() if failure else "Unknown: the index failed and no pod is left to tell why"
                out.append(_fail(row, reason))
        elif whole_job_failed:
            out.append(_fail(row, f"JobFailed: {job_reason}"))
    return out


def _fail(row: model.RangeRow, reason: str) -> Decision:
    return Decision(row.range_id, row.stage, Action.FAIL, reason, (Event(
        "RangeFailed", f"{row.stage} range {row.range_id} (ids {row.low}–{row.high}) failed: {reason}", True),))


def _on_oom(row: model.RangeRow, gazettes: int, tiers: Sequence[str], max_split_depth: int) -> Decision:
    """Split while a range holds several gazettes, else promote; quarantine the last one at the top.

    At the top tier a range keeps being bisected past maxSplitDepth: only a single gazette can be
    quarantined, and each split halves the range, so this ends after log2(gazettes) steps.
    """
    size = tiers[row.tier] if row.tier < len(tiers) else "?"
    killed = Event("RangeOOMKilled", f"{row.stage} range {row.range_id} (ids {row.low}–{row.high}, {gazettes} "
                   f"gazettes) was OOM-killed at {size} (tier {row.tier})", True)
    top = row.tier >= len(tiers) - 1
    if gazettes <= 0:
        return Decision(row.range_id, row.stage, Action.SUCCEED, "NothingLeft", (killed,))
    if gazettes > 1 and (row.depth < max_split_depth or top):
        return Decision(row.range_id, row.stage, Action.SPLIT, "OOMKilled", (killed, Event(
            "RangeSplit", f"{row.stage} range {row.range_id} split into {row.range_id}a and {row.range_id}b "
            f"(depth {row.depth + 1})")))
    if not top:
        return Decision(row.range_id, row.stage, Action.PROMOTE, "OOMKilled", (killed, Event(
            "RangePromoted", f"{row.stage} range {row.range_id} moves to tier {row.tier + 1} "
            f"({tiers[row.tier + 1]})")))
    return Decision(row.range_id, row.stage, Action.QUARANTINE, "OOMKilled", (killed,))


def quarantine_event(stage: Stage, range_id: str, gazette_id: int, file_path: str | None) -> Event:
    """Posted once the quarantined gazette is known (planning finds it in SQL)."""
    return Event("GazetteQuarantined", f"gazette {gazette_id} ({file_path or 'no file path'}) was OOM-killed alone "
                 f"at the top memory tier in {stage} range {range_id}; quarantined", True)
