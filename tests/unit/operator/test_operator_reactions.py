"""Reacting to a Job's failed indexes: OOM → split / promote / quarantine; anything else → failed."""

from __future__ import annotations

from typing import Any

import pytest

from qd_core.states import Stage
from qd_operator import model, reactions
from qd_operator.reactions import Action

TIERS = ("256Mi", "512Mi", "1Gi")


def rng(index: int, *, gazettes: int = 100, tier: int = 0, depth: int = 0,
        state: model.RangeState = model.RangeState.RUNNING) -> model.RangeRow:
    return model.RangeRow(f"r{index:04d}", Stage.EXTRACT, index * 1000, index * 1000 + 999, gazettes, tier=tier,
                          depth=depth, state=state, job_name="run-extract-t0-w0", job_index=index)


def pod(index: int, *, exit_code: int | None = 137, reason: str | None = "OOMKilled", pod_reason: str | None = None,
        finished: str = "2026-01-01T00:00:00Z", phase: str = "Failed") -> dict[str, Any]:
    terminated = {"exitCode": exit_code, "reason": reason, "finishedAt": finished}
    return {"metadata": {"annotations": {model.POD_INDEX: str(index)}, "creationTimestamp": finished},
            "status": {"phase": phase, "reason": pod_reason, "containerStatuses": [
                {"name": "extractor", "state": {"terminated": terminated}}]}}


def job(completed: str = "", failed: str = "", *, job_failed: str | None = None) -> dict[str, Any]:
    conditions = [{"type": "Failed", "status": "True", "reason": job_failed, "message": "boom"}] if job_failed else []
    return {"status": {"completedIndexes": completed, "failedIndexes": failed, "conditions": conditions}}


def decide(job_: dict[str, Any], rows: list[model.RangeRow], pods: list[dict[str, Any]], **kw: Any) -> list[
        reactions.Decision]:
    return reactions.decide(job_, rows, pods, tiers=kw.pop("tiers", TIERS), max_split_depth=kw.pop("depth", 4), **kw)


@pytest.mark.parametrize(("gazettes", "tier", "depth", "action", "event"), [
    (100, 0, 0, Action.SPLIT, "RangeSplit"),  # several gazettes, depth left: bisect
    (100, 0, 4, Action.PROMOTE, "RangePromoted"),  # depth used up: bigger tier
    (1, 0, 0, Action.PROMOTE, "RangePromoted"),  # one gazette: cannot split
    (1, 1, 3, Action.PROMOTE, "RangePromoted"),
    (1, 2, 0, Action.QUARANTINE, None),  # one gazette at the top tier: quarantine
    (7, 2, 4, Action.SPLIT, "RangeSplit"),  # top tier: keep bisecting to isolate the gazette
    (0, 1, 0, Action.SUCCEED, None),  # nothing left to do (all finished before the kill)
])
def test_oom_table(gazettes: int, tier: int, depth: int, action: Action, event: str | None) -> None:
    (d,) = decide(job(failed="0"), [rng(0, gazettes=gazettes, tier=tier, depth=depth)], [pod(0)])
    assert d.action is action
    assert d.events[0].reason == "RangeOOMKilled" and d.events[0].warning
    assert [e.reason for e in d.events[1:]] == ([event] if event else [])


def test_live_unfinished_count_overrides_the_planned_one() -> None:
    (d,) = decide(job(failed="0"), [rng(0, gazettes=100)], [pod(0)], pending={"r0000": 1})
    assert d.action is Action.PROMOTE


def test_exit_137_without_reason_counts_as_oom_but_deadline_does_not() -> None:
    (d,) = decide(job(failed="0"), [rng(0)], [pod(0, reason="Error")])
    assert d.action is Action.SPLIT
    (d,) = decide(job(failed="0"), [rng(0)], [pod(0, reason="Error", pod_reason="DeadlineExceeded")])
    assert d.action is Action.FAIL and d.reason.startswith("DeadlineExceeded")


@pytest.mark.parametrize(("exit_code", "words"), [
    (3, "ExitCode3: a service stayed unavailable"), (143, "ExitCode143: stopped by SIGTERM"),
    (1, "ExitCode1: Error"), (2, "ExitCode2: bad configuration"),
])
def test_other_failures_fail_the_range(exit_code: int, words: str) -> None:
    (d,) = decide(job(failed="0"), [rng(0)], [pod(0, exit_code=exit_code, reason="Error")])
    assert d.action is Action.FAIL and d.reason.startswith(words)
    assert [(e.reason, e.warning) for e in d.events] == [("RangeFailed", True)]
    assert "r0000" in d.events[0].message


def test_last_attempt_decides() -> None:
    pods = [pod(0, exit_code=137, finished="2026-01-01T00:00:02Z"),
            pod(0, exit_code=3, reason="Error", finished="2026-01-01T00:00:01Z")]
    (d,) = decide(job(failed="0"), [rng(0)], pods)
    assert d.action is Action.SPLIT


def test_completed_indexes_succeed_and_running_ones_wait() -> None:
    rows = [rng(0), rng(1), rng(2)]
    decisions = decide(job(completed="0,2"), rows, [pod(1, exit_code=3, reason="Error")])
    assert [(d.range_id, d.action) for d in decisions] == [("r0000", Action.SUCCEED), ("r0002", Action.SUCCEED)]
    assert all(d.events == () for d in decisions)


def test_ranges_already_handled_get_no_decision() -> None:
    rows = [rng(0, state=model.RangeState.SPLIT), rng(1, state=model.RangeState.SUCCEEDED)]
    assert decide(job(completed="1", failed="0"), rows, [pod(0)]) == []


def test_failed_job_fails_its_unfinished_ranges() -> None:
    rows = [rng(0), rng(1), rng(2)]
    decisions = decide(job(completed="0", job_failed="PodFailurePolicy"), rows,
                       [pod(1, exit_code=2, reason="Error")])
    assert [(d.range_id, d.action) for d in decisions] == [
        ("r0000", Action.SUCCEED), ("r0001", Action.FAIL), ("r0002", Action.FAIL)]
    assert decisions[1].reason.startswith("ExitCode2: bad configuration")
    assert decisions[2].reason == "JobFailed: PodFailurePolicy: boom"


def test_failed_index_without_pod_is_a_failure() -> None:
    (d,) = decide(job(failed="0"), [rng(0)], [])
    assert d.action is Action.FAIL and d.reason.startswith("Unknown")


def test_pods_that_did_not_fail_are_ignored() -> None:
    assert reactions.classify(pod(0, phase="Succeeded")) is None
    assert reactions.classify({"metadata": {}, "status": {"phase": "Failed"}}) is None


def test_index_label_works_like_the_annotation() -> None:
    p = pod(4)
    p["metadata"] = {"labels": {model.POD_INDEX: "4"}}
    failure = reactions.classify(p)
    assert failure is not None and failure.index == 4 and failure.oom


def test_rows_without_indexes_use_the_job_annotation_order() -> None:
    rows = [model.RangeRow("r0009", Stage.EXTRACT, 1, 2, 2, state=model.RangeState.RUNNING)]
    job_ = job(completed="1")
    job_["metadata"] = {"annotations": {model.ANNOTATION_RANGES: "r0008,r0009"}}
    (d,) = decide(job_, rows, [])
    assert (d.range_id, d.action) == ("r0009", Action.SUCCEED)


def test_event_messages_say_what_happened() -> None:
    (d,) = decide(job(failed="0"), [rng(0, gazettes=37, tier=1)], [pod(0)])
    assert "OOM-killed at 512Mi (tier 1)" in d.events[0].message and "37 gazettes" in d.events[0].message
    assert "r0000a and r0000b (depth 1)" in d.events[1].message
    (d,) = decide(job(failed="0"), [rng(0, gazettes=1, tier=1)], [pod(0)])
    assert "tier 2 (1Gi)" in d.events[1].message
    q = reactions.quarantine_event(Stage.EXTRACT, "r0000ab", 42, "2704302/2024-01-01/x.pdf")
    assert q.reason == "GazetteQuarantined" and q.warning and "gazette 42" in q.message


def test_event_reasons_are_camel_case() -> None:
    import re

    decisions = decide(job(failed="0,1,2,3"), [rng(0), rng(1, gazettes=1), rng(2, gazettes=1, tier=2), rng(3)],
                       [pod(0), pod(1), pod(2), pod(3, exit_code=3, reason="Error")])
    for e in [e for d in decisions for e in d.events]:
        assert re.fullmatch(r"[A-Z][A-Za-z]+", e.reason)
