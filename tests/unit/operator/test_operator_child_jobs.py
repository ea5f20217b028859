"""The kopf index keeps a ChildJob per Job (what the reconciler reads), never the whole body."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from qd_core.states import Stage
from qd_operator import handlers, jobs, model, reactions, spec, waves

CTX = jobs.JobContext(run_name="daily", run_uid="3f0c8a52-uid", namespace="qd", service_account="qd-job")


def manifest() -> dict[str, Any]:
    run = spec.parse({"selection": {"mode": "UNPROCESSED"}, "parallelism": 4,
                      "image": {"repository": "localhost/qd-extractor", "tag": "0.1.0"}})
    rows = [model.RangeRow(f"r{i:04d}", Stage.EXTRACT, i * 10 + 1, i * 10 + 10, 10) for i in range(6)]
    return jobs.build_job(CTX, run, Stage.EXTRACT, 0, 2, rows)


def as_seen(status: dict[str, Any], **spec_extra: Any) -> dict[str, Any]:
    """The manifest as the watch delivers it: server fields added, a status, the spec changed."""
    body = copy.deepcopy(manifest())
    body["metadata"].update(uid="job-uid", resourceVersion="42", creationTimestamp="2026-01-01T00:00:00Z",
                            managedFields=[{"manager": "kube-controller-manager", "fieldsV1": {"f:status": {}}}])
    body["spec"].update(spec_extra)
    body["status"] = status
    return body


def test_a_job_body_becomes_the_few_fields_the_reconciler_reads() -> None:
    body = as_seen({"active": 2, "succeeded": 3, "failed": 1, "completedIndexes": "0,2-3", "failedIndexes": "1",
                    "startTime": "2026-01-01T00:00:01Z", "ready": 2, "uncountedTerminatedPods": {},
                    "conditions": [{"type": "Failed", "status": "True", "reason": "PodFailurePolicy",
                                    "message": "boom", "lastProbeTime": "2026-01-01T00:01:00Z"},
                                   {"type": "Suspended", "status": "False", "reason": "JobResumed"}]},
                   suspend=True)
    assert model.child_job(body) == model.ChildJob(
        name="daily-extract-t0-w2", range_ids=tuple(f"r{i:04d}" for i in range(6)), suspend=True,
        parallelism=4, completions=6, completed_indexes="0,2-3", failed_indexes="1",
        start_time="2026-01-01T00:00:01Z",
        conditions=(model.JobCondition("Failed", "True", "PodFailurePolicy", "boom"),
                    model.JobCondition("Suspended", "False", "JobResumed", None)))


def test_missing_parts_are_empty() -> None:
    assert model.child_job({}) == model.ChildJob(name="")
    view = model.child_job({"metadata": {"name": "j", "annotations": None}, "spec": {"suspend": None},
                            "status": {"conditions": None, "startTime": None}})
    assert view == model.ChildJob(name="j")
    assert model.ranges_annotation({model.ANNOTATION_RANGES: "r1,,r2"}) == ("r1", "r2")
    assert jobs.range_ids(manifest()) == list(model.child_job(manifest()).range_ids)


def test_condition_is_the_true_one_of_its_type() -> None:
    view = model.ChildJob("j", conditions=(model.JobCondition("Complete", "False"),
                                           model.JobCondition("Failed", "True", "BackoffLimitExceeded")))
    assert view.condition("Complete") is None
    assert view.condition("Failed") == model.JobCondition("Failed", "True", "BackoffLimitExceeded")
    assert model.as_child_job(view) is view


def test_the_index_handler_keys_the_view_by_run_uid() -> None:
    body = as_seen({"completedIndexes": "0"})
    labels = body["metadata"]["labels"]
    entry = handlers.jobs_by_run(labels=labels, body=body)  # kopf passes Labels and Body (mappings)
    assert entry == {CTX.run_uid: model.child_job(body)}
    assert isinstance(entry[CTX.run_uid], model.ChildJob)
    assert "template" not in repr(entry)  # the pod template, env and managedFields are not kept


STATUSES: list[dict[str, Any]] = [
    {},
    {"completedIndexes": "0-5", "conditions": [{"type": "Complete", "status": "True"}]},
    {"completedIndexes": "0,2", "failedIndexes": "1"},
    {"completedIndexes": "0", "failedIndexes": "1-2",
     "conditions": [{"type": "Failed", "status": "True", "reason": "PodFailurePolicy", "message": "exit 2"}]},
    {"failedIndexes": "3", "conditions": [{"type": "Failed", "status": "False"}]},
]


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("suspend", [False, True])
def test_readers_answer_the_same_for_the_view_and_the_body(status: dict[str, Any], suspend: bool) -> None:
    body = as_seen(status, suspend=suspend)
    view = model.child_job(body)
    assert waves.slots_in_use(view) == waves.slots_in_use(body)
    assert waves.free_slots(8, [view, view]) == waves.free_slots(8, [body, body])
    assert reactions.job_failed(view) == reactions.job_failed(body)
    running = [model.RangeRow(rid, Stage.EXTRACT, 1, 2, 2, state=model.RangeState.RUNNING) for rid in view.range_ids]
    pods: list[dict[str, Any]] = []
    assert reactions.decide(view, running, pods, tiers=["512Mi"], max_split_depth=2) == reactions.decide(
        body, running, pods, tiers=["512Mi"], max_split_depth=2)
