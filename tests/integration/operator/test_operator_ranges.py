"""Range transitions in PostgreSQL: waves, success, split, promotion, quarantine, reruns, progress."""

from __future__ import annotations

from typing import Any

import pytest
from operator_db import add_gazettes, new_run, run_spec, scalar

from qd_core import statestore
from qd_core.states import ErrorClass, Stage, State
from qd_operator import jobs, model, planning, progress, ranges, reactions, status, waves
from qd_operator.model import RangeState

pytestmark = pytest.mark.integration
E, X = Stage.EXTRACT, Stage.EXCERPTS


def planned(db: Any, n: int, per: int, *, stages: list[str] | None = None) -> tuple[Any, Any, tuple[int, int]]:
    bounds = add_gazettes(db, n)
    run = new_run()
    sel = run_spec(spec={"ranges": {"gazettesPerRange": per}, "stages": stages or ["extract", "excerpts"]})
    assert planning.plan(db, uid=run.uid, namespace=run.namespace, name=run.name, run=sel).ranges > 0
    return run, sel, bounds


def start(db: Any, run: Any, sel: Any, *, free: int = 4) -> tuple[waves.Wave, str]:
    pending = ranges.pending_ranges(db, run.uid, per_group=sel.wave_size)
    wave = waves.choose(pending, free=free, wave_size=sel.wave_size,
                        next_numbers=ranges.next_wave_numbers(db, run.uid))[0]
    name = jobs.job_name(run.name, wave.stage, wave.tier, wave.number)
    assert ranges.assign_wave(db, run.uid, wave, name)
    return wave, name


def row(db: Any, run: Any, range_id: str, stage: Stage = E) -> model.RangeRow:
    with db.cursor() as cur:
        cur.execute(f"SELECT {model.RANGE_COLUMNS} FROM qd_ranges WHERE run_uid = %s AND range_id = %s"
                    " AND stage = %s", (run.uid, range_id, stage.value))
        return model.range_from_row(cur.fetchone())


def finish(db: Any, run: Any, ids: range, state: str = "succeeded", stage: Stage = E) -> None:
    with db.cursor() as cur:
        cur.execute("INSERT INTO qd_gazette_state (gazette_id, stage, state, run_id, finished_at)"
                    " SELECT i, %s, %s, %s, now() FROM generate_series(%s, %s) i",
                    (stage.value, state, run.uid, ids.start, ids.stop - 1))


def test_waves_are_assigned_once_and_rebuilt_from_the_database(db: Any) -> None:
    run, sel, _ = planned(db, 100, 10)
    wave, name = start(db, run, sel, free=2)
    assert (len(wave.ranges), wave.parallelism, wave.number) == (10, 2, 0)
    assert not ranges.assign_wave(db, run.uid, wave, name)  # same Job twice: refused
    rows = ranges.job_ranges(db, run.uid, name)
    assert [r.range_id for r in rows] == [r.range_id for r in wave.ranges]
    assert [r.job_index for r in rows] == list(range(len(rows)))
    assert all(r.state is RangeState.RUNNING and r.attempts == 1 and r.wave == 0 for r in rows)
    assert list(ranges.wave_parallelism(db, run.uid)) == [name]  # the Job holding running ranges
    assert ranges.next_wave_numbers(db, run.uid) == {(E, 0): 1}
    rebuilt = jobs.build_job(jobs.JobContext(run.name, run.uid, "qd", "sa"), sel, E, 0, 0, rows)
    assert rebuilt["metadata"]["name"] == name and rebuilt["spec"]["completions"] == len(rows)


def test_waves_remember_their_pods_while_ranges_run(db: Any) -> None:
    """What the reconciler counts for a Job its watch has not delivered yet."""
    run, sel, _ = planned(db, 100, 10)
    wave, name = start(db, run, sel, free=2)
    assert ranges.wave_parallelism(db, run.uid) == {name: (2, 10)}
    assert ranges.mark_succeeded(db, run.uid, E, [r.range_id for r in wave.ranges[:9]]) == 9
    assert ranges.wave_parallelism(db, run.uid) == {name: (2, 1)}  # one pod slot left in use
    ranges.mark_succeeded(db, run.uid, E, [wave.ranges[9].range_id])
    assert ranges.wave_parallelism(db, run.uid) == {}


def test_a_stale_wave_is_refused_as_a_whole(db: Any) -> None:
    run, _, _ = planned(db, 30, 10)
    pending = ranges.pending_ranges(db, run.uid, per_group=16)
    (wave,) = waves.choose(pending, free=1, wave_size=16, next_numbers={})
    ranges.assign_wave(db, run.uid, waves.Wave(E, 0, 0, wave.ranges[:1], 1), "job-a")
    assert not ranges.assign_wave(db, run.uid, waves.Wave(E, 0, 1, wave.ranges, 1), "job-b")
    assert ranges.job_ranges(db, run.uid, "job-b") == []
    assert scalar(db, "SELECT count(*) FROM qd_ranges WHERE run_uid = %s AND state = 'pending'", (run.uid,)) == 2


def test_pending_ranges_are_limited_per_stage_and_tier(db: Any) -> None:
    run, _, _ = planned(db, 100, 5)
    assert len(ranges.pending_ranges(db, run.uid, per_group=7)) == 7


def test_extract_success_queues_excerpts(db: Any) -> None:
    run, sel, _ = planned(db, 20, 10)
    start(db, run, sel)
    assert ranges.mark_succeeded(db, run.uid, E, ["r0000", "r0001"]) == 2
    assert ranges.mark_succeeded(db, run.uid, E, ["r0000"]) == 0  # idempotent
    queued = ranges.pending_ranges(db, run.uid, per_group=10)
    assert [(r.range_id, r.stage, r.tier, r.low) for r in queued] == [
        ("r0000", X, 0, row(db, run, "r0000").low), ("r0001", X, 0, row(db, run, "r0001").low)]
    assert planning.finish_run(db, run.uid, model.RunState.SUCCEEDED)  # else the next run overlaps it
    extract_only, sel2, _ = planned(db, 10, 10, stages=["extract"])
    start(db, extract_only, sel2)
    ranges.mark_succeeded(db, extract_only.uid, E, ["r0000"])
    assert ranges.pending_ranges(db, extract_only.uid, per_group=10) == []


def test_split_bisects_the_unfinished_gazettes(db: Any) -> None:
    run, sel, (low, _) = planned(db, 10, 10)
    start(db, run, sel)
    finish(db, run, range(low + 8, low + 10))  # the pod finished the two newest before the kill
    assert ranges.unfinished_counts(db, run.uid, [row(db, run, "r0000")]) == {"r0000": 8}
    a, b = ranges.split_range(db, run.uid, "r0000")
    assert (a.range_id, a.low, a.high, a.gazettes, a.depth, a.parent_id) == ("r0000a", low, low + 3, 4, 1, "r0000")
    assert (b.range_id, b.low, b.high, b.gazettes, b.depth) == ("r0000b", low + 4, low + 7, 4, 1)
    assert row(db, run, "r0000").state is RangeState.SPLIT
    assert row(db, run, "r0000a").state is RangeState.PENDING
    assert ranges.split_range(db, run.uid, "r0000") is None  # already split
    start(db, run, sel)
    c, d = ranges.split_range(db, run.uid, "r0000a")
    assert (c.range_id, d.range_id, c.depth, c.gazettes + d.gazettes) == ("r0000aa", "r0000ab", 2, 4)


def test_split_needs_two_unfinished_gazettes(db: Any) -> None:
    run, sel, (low, _) = planned(db, 3, 10)
    start(db, run, sel)
    finish(db, run, range(low, low + 2))
    assert ranges.split_range(db, run.uid, "r0000") is None
    assert row(db, run, "r0000").state is RangeState.RUNNING


def test_promotion_moves_up_one_tier_until_the_top(db: Any) -> None:
    run, sel, _ = planned(db, 5, 10)
    for tier in (1, 2):
        start(db, run, sel)
        assert ranges.promote_range(db, run.uid, "r0000", tiers=3)
        r = row(db, run, "r0000")
        assert (r.tier, r.state, r.job_name, r.reason) == (tier, RangeState.PENDING, None, "OOMKilled")
    wave, name = start(db, run, sel)
    assert wave.tier == 2 and name.endswith("-t2-w0")
    assert not ranges.promote_range(db, run.uid, "r0000", tiers=3)
    assert row(db, run, "r0000").attempts == 3


def test_quarantine_isolates_the_single_gazette(db: Any) -> None:
    run, sel, (low, _) = planned(db, 4, 10)
    start(db, run, sel)
    finish(db, run, range(low, low + 3))
    q = ranges.quarantine_range(db, run.uid, "r0000")
    assert q is not None and q.gazette_id == low + 3 and q.file_path.endswith(".pdf")
    assert row(db, run, "r0000").state is RangeState.QUARANTINED
    state = scalar(db, "SELECT state || ':' || error_class || ':' || terminal::text || ':' || run_id"
                   " FROM qd_gazette_state WHERE gazette_id = %s AND stage = 'extract'", (low + 3,))
    assert state == f"quarantined:oom:true:{run.uid}"
    assert ranges.quarantine_range(db, run.uid, "r0000") is None  # done once


def test_quarantine_with_nothing_left_closes_the_range(db: Any) -> None:
    run, sel, (low, _) = planned(db, 2, 10)
    start(db, run, sel)
    finish(db, run, range(low, low + 2))
    assert ranges.quarantine_range(db, run.uid, "r0000") is None
    assert row(db, run, "r0000").state is RangeState.SUCCEEDED


def test_reactions_applied_end_to_end(db: Any) -> None:
    run, sel, (low, _) = planned(db, 31, 10)  # r0000..r0002 of 10, r0003 of 1
    _, name = start(db, run, sel)
    rows = ranges.job_ranges(db, run.uid, name)
    finish(db, run, range(low + 30, low + 31))  # r0003's only gazette done before it was killed
    job = {"status": {"completedIndexes": "0", "failedIndexes": "1-3"}}
    pods = [{"metadata": {"annotations": {model.POD_INDEX: str(i)}}, "status": {"phase": "Failed",
             "containerStatuses": [{"name": "extractor", "state": {"terminated": {"exitCode": code}}}]}}
            for i, code in ((1, 137), (2, 3), (3, 137))]
    live = ranges.unfinished_counts(db, run.uid, rows)
    decisions = reactions.decide(job, rows, pods, tiers=["256Mi", "1Gi"], max_split_depth=4, pending=live)
    applied = [ranges.apply(db, run.uid, d, tiers=2) for d in decisions]
    assert [(a.decision.range_id, a.decision.action, a.applied) for a in applied] == [
        ("r0000", reactions.Action.SUCCEED, True), ("r0001", reactions.Action.SPLIT, True),
        ("r0002", reactions.Action.FAIL, True), ("r0003", reactions.Action.SUCCEED, True)]
    assert [e.reason for a in applied for e in a.events] == ["RangeOOMKilled", "RangeSplit", "RangeFailed",
                                                             "RangeOOMKilled"]
    assert row(db, run, "r0002").reason.startswith("ExitCode3")
    again = reactions.decide(job, ranges.job_ranges(db, run.uid, name), pods, tiers=["256Mi", "1Gi"],
                             max_split_depth=4)
    assert again == []  # replaying the same Job changes nothing


def test_quarantine_decision_yields_the_gazette_event(db: Any) -> None:
    run, sel, (low, _) = planned(db, 1, 10)
    for _ in range(2):
        start(db, run, sel)
        if row(db, run, "r0000").tier == 0:
            ranges.promote_range(db, run.uid, "r0000", tiers=2)
    decision = reactions.Decision("r0000", E, reactions.Action.QUARANTINE, "OOMKilled")
    applied = ranges.apply(db, run.uid, decision, tiers=2)
    assert applied.applied and applied.events[-1].reason == "GazetteQuarantined"
    assert f"gazette {low}" in applied.events[-1].message


def test_rerun_failed_requeues_at_the_last_tier_and_reopens_the_run(db: Any) -> None:
    run, sel, _ = planned(db, 20, 10)
    start(db, run, sel)
    ranges.promote_range(db, run.uid, "r0001", tiers=3)
    start(db, run, sel)
    assert ranges.mark_failed(db, run.uid, E, "r0001", "ExitCode3: down")
    assert ranges.mark_failed(db, run.uid, E, "r0000", "ExitCode3: down")
    assert planning.finish_run(db, run.uid, model.RunState.DEGRADED)
    assert ranges.rerun_failed(db, run.uid) == 2
    assert [(r.range_id, r.tier) for r in ranges.pending_ranges(db, run.uid, per_group=10)] == [
        ("r0000", 0), ("r0001", 1)]
    assert scalar(db, "SELECT state FROM qd_runs WHERE uid = %s AND finished_at IS NULL", (run.uid,)) == "active"
    assert ranges.rerun_failed(db, run.uid) == 0


def test_a_rerun_never_reuses_the_name_of_a_finished_job(db: Any) -> None:
    """Re-queued ranges lose their wave; the next wave must still get a new number, hence a new Job."""
    run, sel, _ = planned(db, 5, 10)  # one range
    first, old_name = start(db, run, sel)
    assert ranges.mark_failed(db, run.uid, E, "r0000", "ExitCode3: down")
    assert ranges.rerun_failed(db, run.uid) == 1
    second, new_name = start(db, run, sel)
    assert (first.number, second.number) == (0, 1) and new_name != old_name
    assert ranges.job_ranges(db, run.uid, old_name) == []  # the old Job's pods no longer speak for r0000
    assert [r.range_id for r in ranges.job_ranges(db, run.uid, new_name)] == ["r0000"]
    assert scalar(db, "SELECT count(*) FROM qd_waves WHERE run_uid = %s", (run.uid,)) == 2


def test_a_tier_emptied_by_promotion_gets_a_new_wave_number(db: Any) -> None:
    run, sel, _ = planned(db, 20, 10)  # r0000, r0001

    def launch() -> dict[str, tuple[int, int, str]]:
        """Start every wave there is room for: range id -> (tier, wave number, Job name)."""
        chosen = waves.choose(ranges.pending_ranges(db, run.uid, per_group=sel.wave_size), free=4,
                              wave_size=sel.wave_size, next_numbers=ranges.next_wave_numbers(db, run.uid))
        out = {}
        for wave in chosen:
            name = jobs.job_name(run.name, wave.stage, wave.tier, wave.number)
            assert ranges.assign_wave(db, run.uid, wave, name)
            out.update({r.range_id: (wave.tier, wave.number, name) for r in wave.ranges})
        return out

    assert {k: v[:2] for k, v in launch().items()} == {"r0000": (0, 0), "r0001": (0, 0)}
    assert ranges.promote_range(db, run.uid, "r0000", tiers=3)
    assert ranges.mark_failed(db, run.uid, E, "r0001", "ExitCode3: down")
    t1 = launch()["r0000"]
    assert t1[:2] == (1, 0)
    assert ranges.promote_range(db, run.uid, "r0000", tiers=3)  # tier 1 holds no wave any more
    assert ranges.rerun_failed(db, run.uid) == 1
    assert {k: v[:2] for k, v in launch().items()} == {"r0000": (2, 0), "r0001": (0, 1)}
    assert ranges.promote_range(db, run.uid, "r0001", tiers=3)
    again = launch()["r0001"]
    assert again[:2] == (1, 1) and again[2] != t1[2]  # not tier 1's wave 0, whose Job finished long ago
    assert scalar(db, "SELECT count(DISTINCT job_name) FROM qd_waves WHERE run_uid = %s", (run.uid,)) == 5


def test_excerpts_split_on_what_extract_produced(db: Any) -> None:
    run, sel, (low, _) = planned(db, 6, 10)
    start(db, run, sel)
    finish(db, run, range(low, low + 6))
    ranges.mark_succeeded(db, run.uid, E, ["r0000"])
    (wave,) = waves.choose(ranges.pending_ranges(db, run.uid, per_group=16), free=1, wave_size=16, next_numbers={})
    assert ranges.assign_wave(db, run.uid, wave, "x-excerpts")
    finish(db, run, range(low, low + 2), stage=X)
    assert ranges.unfinished_counts(db, run.uid, [row(db, run, "r0000", X)]) == {"r0000": 4}
    a, b = ranges.split_range(db, run.uid, "r0000", stage=X)
    assert (a.stage, a.low, b.high, a.gazettes + b.gazettes) == (X, low + 2, low + 5, 4)


def test_progress_counts(db: Any) -> None:
    run, sel, (low, _) = planned(db, 30, 10)
    assert progress.load(db, "not-planned") is None
    start(db, run, sel)
    finish(db, run, range(low, low + 10))
    finish(db, run, range(low + 10, low + 12), state="failed")
    statestore.quarantine(db, low + 12, E, "OOM alone at the top", run.uid)
    ranges.mark_succeeded(db, run.uid, E, ["r0000"])
    ranges.mark_failed(db, run.uid, E, "r0001", "ExitCode3: tika down")
    statestore.claim(db, low + 25, E, "another-run")  # other runs' rows are not counted
    p = progress.load(db, run.uid)
    assert p is not None and p.stages == (E, X) and p.planned_gazettes == 30
    assert p.ranges == {RangeState.SUCCEEDED: 1, RangeState.FAILED: 1, RangeState.RUNNING: 1, RangeState.PENDING: 1}
    assert p.gazettes == {E: {State.SUCCEEDED: 10, State.FAILED: 2, State.QUARANTINED: 1}}
    assert p.failed_ranges == [{"id": "r0001", "low": low + 10, "high": low + 19, "stage": "extract",
                                "reason": "ExitCode3: tika down"}]
    assert p.quarantined == [{"gazetteId": low + 12, "filePath": p.quarantined[0]["filePath"]}]
    s = status.compute(None, status.Facts(generation=1, suspended=False, plan=status.Plan.PLANNED,
                                          now=p.planned_at, progress=p))
    assert s["gazettes"] == {"total": 30, "succeeded": 0, "failed": 2, "skipped": 0, "quarantined": 1, "pending": 27}
    assert s["ranges"]["total"] == 4 and s["failedRanges"][0]["id"] == "r0001"
    assert ErrorClass.OOM.value == "oom"
