"""Names and row types shared by the operator's modules (no I/O here).

The API group, label and annotation keys are defined once, because the Job builder, the child
index and the reactions must agree on them; the range row mirrors `qd_ranges`; ChildJob is the
little the reconciler reads of a child Job (all the kopf index keeps of it).
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from typing import Any

from qd_core.states import Stage

GROUP = "queridodiario.ok.org.br"
VERSION = "v1alpha1"
PLURAL = "extractionruns"
KIND = "ExtractionRun"

#: Labels on every child Job and its pods (the kopf index keys Jobs by the run label).
LABEL_RUN = f"{GROUP}/run"
LABEL_RUN_UID = f"{GROUP}/run-uid"
LABEL_STAGE = f"{GROUP}/stage"
LABEL_TIER = f"{GROUP}/tier"
LABEL_WAVE = f"{GROUP}/wave"
#: Job annotation: the range ids of a wave, comma-separated, in completion-index order.
ANNOTATION_RANGES = f"{GROUP}/ranges"
#: Job annotation: the tier's memory quantity as written in the spec.
ANNOTATION_MEMORY = f"{GROUP}/memory"
#: CR annotation: a new value re-queues the run's failed ranges.
ANNOTATION_RERUN = f"{GROUP}/rerun-failed"
#: The Job controller's pod annotation (and label) carrying the completion index.
POD_INDEX = "batch.kubernetes.io/job-completion-index"
#: The one container of every Job pod (podFailurePolicy rules name it).
CONTAINER = "extractor"


class RangeState(enum.StrEnum):
    """Where a range stands; `split` and `quarantined` are final like `succeeded`."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SPLIT = "split"  #: replaced by its two halves
    QUARANTINED = "quarantined"  #: its single gazette was quarantined; counts as done


#: States in which a range needs no more work.
FINAL_RANGE_STATES: frozenset[RangeState] = frozenset(
    {RangeState.SUCCEEDED, RangeState.FAILED, RangeState.SPLIT, RangeState.QUARANTINED})


class RunState(enum.StrEnum):
    """`qd_runs.state`: active until the run finished or was deleted."""

    ACTIVE = "active"
    SUCCEEDED = "succeeded"
    DEGRADED = "degraded"
    FAILED = "failed"
    DELETED = "deleted"


@dataclasses.dataclass(frozen=True)
class RangeRow:
    """One row of `qd_ranges` (a share of a run for one stage)."""

    range_id: str
    stage: Stage
    low: int
    high: int
    gazettes: int
    tier: int = 0
    depth: int = 0
    state: RangeState = RangeState.PENDING
    parent_id: str | None = None
    attempts: int = 0
    wave: int | None = None
    job_name: str | None = None
    job_index: int | None = None
    reason: str | None = None

    @property
    def bounds(self) -> str:
        """`low:high`, the form QD_RANGES carries."""
        return f"{self.low}:{self.high}"


#: Columns selected to build a RangeRow, in field order.
RANGE_COLUMNS = ("range_id, stage, low, high, gazettes, tier, depth, state, parent_id, attempts, wave,"
                 " job_name, job_index, reason")


def range_from_row(row: tuple[object, ...]) -> RangeRow:
    """Build a RangeRow from a tuple selected with RANGE_COLUMNS."""
    (range_id, stage, low, high, gazettes, tier, depth, state, parent_id, attempts, wave, job_name,
     job_index, reason) = row
    return RangeRow(
        range_id=str(range_id), stage=Stage(str(stage)), low=_int(low), high=_int(high), gazettes=_int(gazettes),
        tier=_int(tier), depth=_int(depth), state=RangeState(str(state)),
        parent_id=None if parent_id is None else str(parent_id), attempts=_int(attempts),
        wave=None if wave is None else _int(wave), job_name=None if job_name is None else str(job_name),
        job_index=None if job_index is None else _int(job_index), reason=None if reason is None else str(reason))


def _int(value: object) -> int:
    assert isinstance(value, int)
    return value


@dataclasses.dataclass(frozen=True)
class JobCondition:
    """One entry of a Job's status.conditions (Complete, Failed, Suspended, …)."""

    type: str
    status: str
    reason: str | None = None
    message: str | None = None


@dataclasses.dataclass(frozen=True)
class ChildJob:
    """What the reconciler reads of one of a run's Jobs; the kopf index keeps this, not the body.

    Index strings stay in the Job controller's compressed form (`"0,3-5"`, see indexes.parse).
    """

    name: str
    #: The range ids of the wave by completion index (the ANNOTATION_RANGES annotation).
    range_ids: tuple[str, ...] = ()
    suspend: bool = False
    parallelism: int = 0
    completions: int = 0
    completed_indexes: str = ""
    failed_indexes: str = ""
    #: status.startTime (RFC 3339), None until the Job controller starts it.
    start_time: str | None = None
    conditions: tuple[JobCondition, ...] = ()

    def condition(self, kind: str) -> JobCondition | None:
        """The condition of this type whose status is True, if any."""
        return next((c for c in self.conditions if c.type == kind and c.status == "True"), None)


def ranges_annotation(annotations: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The range ids in a Job's ANNOTATION_RANGES annotation (empty when absent)."""
    raw = (annotations or {}).get(ANNOTATION_RANGES) or ""
    return tuple(r for r in str(raw).split(",") if r)


def child_job(body: Mapping[str, Any]) -> ChildJob:
    """The ChildJob of a Job body (a watch event's body, an API dict or a manifest; missing parts are empty)."""
    meta = body.get("metadata") or {}
    spec = body.get("spec") or {}
    status = body.get("status") or {}
    return ChildJob(
        name=str(meta.get("name") or ""),
        range_ids=ranges_annotation(meta.get("annotations")),
        suspend=bool(spec.get("suspend")),
        parallelism=int(spec.get("parallelism") or 0),
        completions=int(spec.get("completions") or 0),
        completed_indexes=str(status.get("completedIndexes") or ""),
        failed_indexes=str(status.get("failedIndexes") or ""),
        start_time=None if not status.get("startTime") else str(status["startTime"]),
        conditions=tuple(JobCondition(type=str(c.get("type") or ""), status=str(c.get("status") or ""),
                                      reason=None if c.get("reason") is None else str(c["reason"]),
                                      message=None if c.get("message") is None else str(c["message"]))
                         for c in status.get("conditions") or []))


#: A Job as the pure functions accept it: the index's ChildJob, or a Job body (tests, manifests).
JobLike = ChildJob | Mapping[str, Any]


def as_child_job(job: JobLike) -> ChildJob:
    """`job` itself when it is a ChildJob, else child_job(job)."""
    return job if isinstance(job, ChildJob) else child_job(job)
