"""Planning against real PostgreSQL: boundaries, idempotency, empty selections, overlapping runs."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import psycopg2
import pytest
from operator_db import ARAPIRACA, MACEIO, RECIFE, add_gazettes, new_run, run_spec, scalar

from qd_core.states import Stage
from qd_operator import model, planning

pytestmark = pytest.mark.integration


def plan(conn: Any, run: Any, sel: Any) -> planning.PlanResult:
    return planning.plan(conn, uid=run.uid, namespace=run.namespace, name=run.name, run=sel)


def ranges_of(conn: Any, uid: str) -> list[tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute("SELECT range_id, low, high, gazettes, tier, depth, state, stage FROM qd_ranges"
                    " WHERE run_uid = %s ORDER BY low", (uid,))
        return cur.fetchall()


def pending_ids(conn: Any, sel: Any) -> list[int]:
    where, params = sel.selection.predicate(Stage.EXTRACT)
    with conn.cursor() as cur:
        cur.execute(f"SELECT g.id FROM gazettes g JOIN territories t ON t.id = g.territory_id WHERE {where}"
                    " ORDER BY g.id", params)
        return [r[0] for r in cur.fetchall()]


def test_boundaries_cover_every_pending_gazette_exactly_once(db: Any) -> None:
    add_gazettes(db, 700)
    add_gazettes(db, 50, processed=True)  # not pending
    add_gazettes(db, 20, ext=".zip")  # not pending
    add_gazettes(db, 434, territory=ARAPIRACA)
    hopeless_low, hopeless_high = add_gazettes(db, 30)
    with db.cursor() as cur:  # terminal failures are not pending either
        cur.execute("INSERT INTO qd_gazette_state (gazette_id, stage, state, error_class, terminal)"
                    " SELECT id, 'extract', 'failed', 'corrupt', TRUE FROM gazettes WHERE id BETWEEN %s AND %s",
                    (hopeless_low, hopeless_high))
    sel = run_spec(spec={"ranges": {"gazettesPerRange": 100}})
    run = new_run()
    result = plan(db, run, sel)
    expected = pending_ids(db, sel)
    assert len(expected) == 1134
    assert (result.outcome, result.gazettes, result.ranges, result.new) == (planning.Outcome.PLANNED, 1134, 12, True)
    rows = ranges_of(db, run.uid)
    assert [r[0] for r in rows] == [f"r{i:04d}" for i in range(12)]
    assert [r[3] for r in rows] == [100] * 11 + [34]
    assert all(r[4:8] == (0, 0, "pending", "extract") for r in rows)
    assert all(a[2] < b[1] for a, b in itertools.pairwise(rows))  # disjoint, ordered
    covered = [gid for gid in expected for r in rows if r[1] <= gid <= r[2]]
    assert covered == expected  # each pending id falls in exactly one range
    for _, low, high, count, *_ in rows:
        assert sum(low <= gid <= high for gid in expected) == count


def test_planning_again_is_a_no_op(db: Any) -> None:
    add_gazettes(db, 250)
    run, sel = new_run(), run_spec(spec={"ranges": {"gazettesPerRange": 100}})
    first = plan(db, run, sel)
    before = ranges_of(db, run.uid)
    add_gazettes(db, 80)  # new gazettes do not change an existing plan
    again = plan(db, run, sel)
    assert (again.outcome, again.ranges, again.gazettes, again.new) == (planning.Outcome.PLANNED, 3, 250, False)
    assert first.new and ranges_of(db, run.uid) == before


def test_empty_selection_is_done_at_once(db: Any) -> None:
    add_gazettes(db, 10, processed=True)
    run = new_run()
    result = plan(db, run, run_spec())
    assert (result.outcome, result.ranges, result.gazettes) == (planning.Outcome.EMPTY, 0, 0)
    assert result.message == "no gazette matches the selection"
    assert scalar(db, "SELECT state FROM qd_runs WHERE uid = %s AND finished_at IS NOT NULL", (run.uid,)) == "succeeded"
    again = plan(db, run, run_spec())
    assert (again.outcome, again.new) == (planning.Outcome.EMPTY, False)


def test_overlapping_run_is_blocked_with_the_other_runs_name(db: Any) -> None:
    add_gazettes(db, 30, date="2024-01-10")
    add_gazettes(db, 30, date="2024-02-10")
    add_gazettes(db, 30, territory=ARAPIRACA, date="2024-01-10")
    first = new_run("first")
    assert plan(db, first, run_spec(territories=[MACEIO])).outcome is planning.Outcome.PLANNED
    blocked = plan(db, new_run("second"), run_spec(territories=[MACEIO], dateFrom="2024-02-01"))
    assert blocked.outcome is planning.Outcome.OVERLAP
    assert blocked.blocking_run == f"qd/{first.name}" and f"qd/{first.name}" in blocked.message
    everything = plan(db, new_run("all"), run_spec("ALL"))
    assert everything.outcome is planning.Outcome.OVERLAP


def test_a_run_past_extraction_still_blocks_what_its_ranges_hold(db: Any) -> None:
    """UNPROCESSED no longer matches extracted gazettes, but the run's excerpts stage still works on them."""
    low, high = add_gazettes(db, 20, date="2024-01-10")
    first = new_run("first")
    assert plan(db, first, run_spec(territories=[MACEIO])).outcome is planning.Outcome.PLANNED
    with db.cursor() as cur:  # extraction done: processed, the extract range succeeded, excerpts queued
        cur.execute("UPDATE gazettes SET processed = TRUE WHERE id BETWEEN %s AND %s", (low, high))
        cur.execute("UPDATE qd_ranges SET state = 'succeeded' WHERE run_uid = %s", (first.uid,))
        cur.execute("INSERT INTO qd_ranges (run_uid, range_id, stage, low, high, gazettes)"
                    " VALUES (%s, 'r0000', 'excerpts', %s, %s, 20)", (first.uid, low, high))
    blocked = plan(db, new_run("all"), run_spec("ALL"))
    assert (blocked.outcome, blocked.blocking_uid) == (planning.Outcome.OVERLAP, first.uid)
    with db.cursor() as cur:  # its last range done: it no longer touches anything, even before it is marked finished
        cur.execute("UPDATE qd_ranges SET state = 'succeeded' WHERE run_uid = %s", (first.uid,))
    assert plan(db, new_run("all-later"), run_spec("ALL")).outcome is planning.Outcome.PLANNED


def test_rerunning_failed_ranges_is_refused_while_another_run_holds_them(db: Any) -> None:
    from qd_operator import ranges

    add_gazettes(db, 20, date="2024-01-10")
    first = new_run("first")
    assert plan(db, first, run_spec(territories=[MACEIO])).outcome is planning.Outcome.PLANNED
    with db.cursor() as cur:
        cur.execute("UPDATE qd_ranges SET state = 'failed' WHERE run_uid = %s", (first.uid,))
    assert planning.finish_run(db, first.uid, model.RunState.DEGRADED)
    second = new_run("second")  # planned over the same gazettes once the first stopped touching them
    assert plan(db, second, run_spec(territories=[MACEIO])).outcome is planning.Outcome.PLANNED
    with pytest.raises(ranges.RerunBlockedError, match=f"overlap active run qd/{second.name}"):
        ranges.rerun_failed(db, first.uid)
    assert scalar(db, "SELECT count(*) FROM qd_ranges WHERE run_uid = %s AND state = 'failed'", (first.uid,)) > 0
    assert scalar(db, "SELECT finished_at IS NOT NULL FROM qd_runs WHERE uid = %s", (first.uid,))
    assert planning.finish_run(db, second.uid, model.RunState.SUCCEEDED)
    assert ranges.rerun_failed(db, first.uid) > 0  # free again


def test_a_rerun_is_blocked_only_by_runs_on_the_failed_ranges_gazettes(db: Any) -> None:
    from qd_operator import ranges

    low, high = add_gazettes(db, 20, date="2024-01-10")
    add_gazettes(db, 20, date="2024-02-10")
    first = new_run("first")
    assert plan(db, first, run_spec(territories=[MACEIO], dateTo="2024-01-31")).outcome is planning.Outcome.PLANNED
    with db.cursor() as cur:  # extracted (processed) and then failed in the excerpts stage
        cur.execute("UPDATE gazettes SET processed = TRUE WHERE id BETWEEN %s AND %s", (low, high))
        cur.execute("UPDATE qd_ranges SET state = 'succeeded' WHERE run_uid = %s", (first.uid,))
        cur.execute("INSERT INTO qd_ranges (run_uid, range_id, stage, low, high, gazettes, state)"
                    " VALUES (%s, 'r0000', 'excerpts', %s, %s, 20, 'failed')", (first.uid, low, high))
    assert planning.finish_run(db, first.uid, model.RunState.DEGRADED)
    february = new_run("february")  # other gazettes: does not block
    assert plan(db, february, run_spec(dateFrom="2024-02-01")).outcome is planning.Outcome.PLANNED
    everything = new_run("everything")  # ALL: the processed January gazettes too
    assert plan(db, everything, run_spec("ALL", dateTo="2024-01-31")).outcome is planning.Outcome.PLANNED
    with pytest.raises(ranges.RerunBlockedError, match=f"qd/{everything.name}"):
        ranges.rerun_failed(db, first.uid)
    assert planning.finish_run(db, everything.uid, model.RunState.SUCCEEDED)
    assert ranges.rerun_failed(db, first.uid) == 1  # February's run is still active, and does not matter


def test_disjoint_runs_plan_fine(db: Any) -> None:
    add_gazettes(db, 30, date="2024-01-10")
    add_gazettes(db, 30, date="2024-02-10")
    add_gazettes(db, 30, territory=ARAPIRACA, date="2024-01-10")
    add_gazettes(db, 5, territory=RECIFE, date="2024-01-10")
    january = plan(db, new_run("jan"), run_spec(territories=[MACEIO], dateFrom="2024-01-01", dateTo="2024-01-31"))
    february = plan(db, new_run("feb"), run_spec(territories=[MACEIO], dateFrom="2024-02-01", dateTo="2024-02-29"))
    other_place = plan(db, new_run("ara"), run_spec(territories=[ARAPIRACA, RECIFE]))
    assert [r.outcome for r in (january, february, other_place)] == [planning.Outcome.PLANNED] * 3
    assert (january.gazettes, february.gazettes, other_place.gazettes) == (30, 30, 35)


def test_finished_runs_no_longer_block(db: Any) -> None:
    add_gazettes(db, 10)
    first = new_run()
    plan(db, first, run_spec())
    second = new_run()
    assert plan(db, second, run_spec()).outcome is planning.Outcome.OVERLAP
    assert planning.finish_run(db, first.uid, model.RunState.DEGRADED)
    assert not planning.finish_run(db, first.uid, model.RunState.DEGRADED)  # idempotent
    assert plan(db, second, run_spec()).outcome is planning.Outcome.PLANNED


def test_concurrent_planners_cannot_both_take_the_same_gazettes(db: Any, pg_dsn: str, schema: str) -> None:
    add_gazettes(db, 2000)
    runs = [new_run(f"c{i}") for i in range(4)]
    results: list[planning.PlanResult] = []
    barrier = threading.Barrier(len(runs))

    def worker(run: Any) -> None:
        conn = psycopg2.connect(pg_dsn, options=f"-c search_path={schema}")
        try:
            barrier.wait()
            results.append(plan(conn, run, run_spec()))
        finally:
            conn.close()

    threads = [threading.Thread(target=worker, args=(r,)) for r in runs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # A planner that finds the lock taken does not wait (BUSY: the next pass retries); none plans twice.
    outcomes = [r.outcome for r in results]
    assert outcomes.count(planning.Outcome.PLANNED) == 1
    assert set(outcomes) <= {planning.Outcome.PLANNED, planning.Outcome.OVERLAP, planning.Outcome.BUSY}
    assert scalar(db, "SELECT count(DISTINCT run_uid) FROM qd_ranges") == 1
    # Retried once the lock is free, every other run is blocked by the one that planned.
    retried = [plan(db, run, run_spec()).outcome for run in runs if run.uid not in _planned_uids(db)]
    assert retried == [planning.Outcome.OVERLAP] * 3


def _planned_uids(db: Any) -> set[str]:
    with db.cursor() as cur:
        cur.execute("SELECT uid FROM qd_runs")
        return {str(r[0]) for r in cur.fetchall()}


def test_a_planner_never_waits_for_the_planning_lock(db: Any, pg_dsn: str, schema: str) -> None:
    """Its connection is one of the operator's few pooled ones: waiting would starve every run."""
    add_gazettes(db, 10)
    holder = psycopg2.connect(pg_dsn, options=f"-c search_path={schema}")
    try:
        with holder, holder.cursor() as cur:
            assert planning.try_plan_lock(cur)
            result = plan(db, new_run("waits-not"), run_spec())
            assert (result.outcome, result.message) == (planning.Outcome.BUSY, "another run is being planned; retrying")
    finally:
        holder.close()
    assert plan(db, new_run("now"), run_spec()).outcome is planning.Outcome.PLANNED


def test_ranges_also_cut_by_known_source_bytes(db: Any) -> None:
    low, _ = add_gazettes(db, 100)
    with db.cursor() as cur:  # ten big gazettes (from earlier transient failures) among small ones
        cur.execute("INSERT INTO qd_gazette_state (gazette_id, stage, state, error_class, source_bytes)"
                    " SELECT id, 'extract', 'failed', 'tika', CASE WHEN (id - %s) %% 10 = 0 THEN 50000000 ELSE 1000 END"
                    " FROM gazettes", (low,))
    run = new_run()
    result = plan(db, run, run_spec(spec={"ranges": {"gazettesPerRange": 40, "targetBytesPerRange": 100_000_000}}))
    rows = ranges_of(db, run.uid)
    assert result.gazettes == 100 and sum(r[3] for r in rows) == 100
    assert [r[0] for r in rows] == [f"r{i:04d}" for i in range(len(rows))]  # numbered without gaps
    assert max(r[3] for r in rows) <= 40 and len(rows) > 3  # more ranges than by count alone
    with db.cursor() as cur:
        cur.execute("SELECT r.range_id, sum(s.source_bytes) FROM qd_ranges r JOIN qd_gazette_state s"
                    " ON s.gazette_id BETWEEN r.low AND r.high WHERE r.run_uid = %s GROUP BY 1", (run.uid,))
        assert all(total <= 100_000_000 + 50_000_000 for _, total in cur.fetchall())


def test_range_ids_stay_unique_beyond_9999_ranges(db: Any) -> None:
    add_gazettes(db, 10_050)
    run = new_run()
    assert plan(db, run, run_spec(spec={"ranges": {"gazettesPerRange": 1}})).ranges == 10_050
    assert scalar(db, "SELECT count(DISTINCT range_id) FROM qd_ranges WHERE run_uid = %s", (run.uid,)) == 10_050
    assert scalar(db, "SELECT max(range_id) FROM qd_ranges WHERE run_uid = %s AND length(range_id) = 6",
                  (run.uid,)) == "r10049"
