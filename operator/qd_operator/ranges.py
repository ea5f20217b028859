"""Range transitions in `qd_ranges`: waves, success, failure, split, promotion, quarantine.

Every transition is guarded by the state it leaves (`WHERE state = 'running'`), so applying a
reaction twice — a retried handler, a restarted operator replaying Job events — changes nothing
the second time. Splits bisect the range's *unfinished* gazettes by id in SQL (`ntile(2)`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from qd_core import selection, statestore
from qd_core.states import Stage
from qd_operator import model, planning, reactions, waves
from qd_operator.planning import Connection

_FINISHED_GAZETTE = "('succeeded', 'skipped', 'quarantined', 'failed')"
_COLUMNS = model.RANGE_COLUMNS


def _unfinished_sql(sel: selection.Selection, stage: Stage) -> tuple[str, dict[str, Any]]:
    """`SELECT g.id, g.file_path` of the gazettes of [low, high] this run has not finished in `stage`."""
    done = (f"NOT EXISTS (SELECT 1 FROM qd_gazette_state rs WHERE rs.gazette_id = g.id AND rs.stage = %(r_stage)s"
            f" AND rs.run_id = %(r_run)s AND rs.state IN {_FINISHED_GAZETTE})")
    if stage is Stage.EXTRACT:
        where, params = planning.prefixed(*sel.predicate(Stage.EXTRACT), "s_")
        return (f"SELECT g.id, g.file_path FROM gazettes g INNER JOIN territories t ON t.id = g.territory_id"
                f" WHERE {where} AND g.id BETWEEN %(r_low)s AND %(r_high)s AND {done}"), params
    # Excerpts work on what this run's extract stage produced (as the excerpts pod selects).
    return ("SELECT g.id, g.file_path FROM qd_gazette_state e INNER JOIN gazettes g ON g.id = e.gazette_id"
            " WHERE e.stage = 'extract' AND e.state = 'succeeded' AND e.run_id = %(r_run)s"
            f" AND g.id BETWEEN %(r_low)s AND %(r_high)s AND {done}"), {}


def _scalar(cur: Any) -> int:
    row = cur.fetchone()
    assert row is not None  # aggregates always return a row
    return int(row[0])


def _locked_row(cur: Any, run_uid: str, stage: Stage, range_id: str) -> model.RangeRow | None:
    cur.execute(f"SELECT {_COLUMNS} FROM qd_ranges WHERE run_uid = %s AND stage = %s AND range_id = %s FOR UPDATE",
                (run_uid, stage.value, range_id))
    row = cur.fetchone()
    return None if row is None else model.range_from_row(row)


def _unfinished(cur: Any, run_uid: str, row: model.RangeRow) -> tuple[str, dict[str, Any]]:
    sel, _ = planning.run_selection(cur, run_uid)
    sql, params = _unfinished_sql(sel, row.stage)
    params.update(r_stage=row.stage.value, r_run=run_uid, r_low=row.low, r_high=row.high)
    return sql, params


def unfinished_counts(conn: Connection, run_uid: str, rows: Sequence[model.RangeRow]) -> dict[str, int]:
    """Live count of each range's unfinished gazettes (reactions decide split/promote on it)."""
    out: dict[str, int] = {}
    with conn, conn.cursor() as cur:
        for row in rows:
            sql, params = _unfinished(cur, run_uid, row)
            cur.execute(f"SELECT count(*) FROM ({sql}) u", params)
            out[row.range_id] = _scalar(cur)
    return out


def pending_ranges(conn: Connection, run_uid: str, *, per_group: int) -> list[model.RangeRow]:
    """Pending ranges, at most `per_group` (lowest ids first) per stage and tier: waves.choose's input."""
    with conn, conn.cursor() as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM (SELECT *, row_number() OVER (PARTITION BY stage, tier ORDER BY low)"
                    " AS n FROM qd_ranges WHERE run_uid = %s AND state = 'pending') p WHERE n <= %s"
                    " ORDER BY stage, tier, low", (run_uid, per_group))
        return [model.range_from_row(r) for r in cur.fetchall()]


def next_wave_numbers(conn: Connection, run_uid: str) -> dict[tuple[Stage, int], int]:
    """The next wave number per stage and tier that was never issued (qd_waves keeps every one)."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT stage, tier, max(number) + 1 FROM qd_waves WHERE run_uid = %s GROUP BY stage, tier",
                    (run_uid,))
        return {(Stage(stage), int(tier)): int(n) for stage, tier, n in cur.fetchall()}


def assign_wave(conn: Connection, run_uid: str, wave: waves.Wave, job_name: str) -> bool:
    """Mark a wave's ranges running in Job `job_name` (index i = ranges[i]); all or nothing.

    Done before the Job is created: after a crash in between, job_ranges() rebuilds the same Job.
    """
    ids = [r.range_id for r in wave.ranges]
    try:
        with conn, conn.cursor() as cur:
            _assign(cur, run_uid, wave, job_name, ids)
    except _Conflict:
        return False
    return True


class _Conflict(Exception):
    """Raised inside the transaction to roll it back."""


def _assign(cur: Any, run_uid: str, wave: waves.Wave, job_name: str, ids: list[str]) -> None:
    # The wave's number and Job name are taken for good, even if its ranges are later re-queued.
    cur.execute("INSERT INTO qd_waves (run_uid, stage, tier, number, job_name, ranges, parallelism)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (run_uid, wave.stage.value, wave.tier, wave.number, job_name, len(ids), wave.parallelism))
    if cur.rowcount != 1:
        raise _Conflict
    cur.execute(
        "UPDATE qd_ranges r SET state = 'running', wave = %(wave)s, job_name = %(job)s, job_index = v.idx,"
        " attempts = r.attempts + 1, started_at = now(), finished_at = NULL, reason = NULL"
        " FROM unnest(%(ids)s::text[], %(idx)s::int[]) AS v(range_id, idx)"
        " WHERE r.run_uid = %(run)s AND r.stage = %(stage)s AND r.tier = %(tier)s AND r.range_id = v.range_id"
        " AND r.state = 'pending'",
        {"wave": wave.number, "job": job_name, "ids": ids, "idx": list(range(len(ids))), "run": run_uid,
         "stage": wave.stage.value, "tier": wave.tier})
    if cur.rowcount != len(ids):
        raise _Conflict


def job_ranges(conn: Connection, run_uid: str, job_name: str) -> list[model.RangeRow]:
    """The ranges a Job works on, by completion index (to react to it, or to recreate it)."""
    with conn, conn.cursor() as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM qd_ranges WHERE run_uid = %s AND job_name = %s ORDER BY job_index",
                    (run_uid, job_name))
        return [model.range_from_row(r) for r in cur.fetchall()]


def wave_parallelism(conn: Connection, run_uid: str) -> dict[str, tuple[int, int]]:
    """Job name -> (pods it was created with, ranges still running in it), for Jobs with running ranges.

    The reconciler counts these for Jobs its watch has not delivered yet, so a pass right after a
    wave was created cannot start more pods than spec.parallelism allows.
    """
    with conn, conn.cursor() as cur:
        cur.execute("SELECT w.job_name, w.parallelism, count(*) FROM qd_waves w JOIN qd_ranges r"
                    " ON r.run_uid = w.run_uid AND r.job_name = w.job_name AND r.state = 'running'"
                    " WHERE w.run_uid = %s GROUP BY w.job_name, w.parallelism", (run_uid,))
        return {str(name): (int(par), int(n)) for name, par, n in cur.fetchall()}


def mark_succeeded(conn: Connection, run_uid: str, stage: Stage, range_ids: Sequence[str], *,
                   reason: str | None = None) -> int:
    """Running ranges → succeeded; an extract range also queues its excerpts range (if the run has them)."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "WITH done AS (UPDATE qd_ranges SET state = 'succeeded', finished_at = now(), reason = %(reason)s"
            "   WHERE run_uid = %(run)s AND stage = %(stage)s AND range_id = ANY(%(ids)s) AND state = 'running'"
            "   RETURNING range_id, low, high, gazettes),"
            " queued AS (INSERT INTO qd_ranges (run_uid, range_id, stage, low, high, gazettes, state)"
            "   SELECT %(run)s, d.range_id, 'excerpts', d.low, d.high, d.gazettes, 'pending' FROM done d"
            "   WHERE %(stage)s = 'extract' AND EXISTS (SELECT 1 FROM qd_runs WHERE uid = %(run)s"
            "     AND 'excerpts' = ANY(stages)) ON CONFLICT DO NOTHING RETURNING 1)"
            " SELECT (SELECT count(*) FROM done), (SELECT count(*) FROM queued)",
            {"reason": reason, "run": run_uid, "stage": stage.value, "ids": list(range_ids)})
        return _scalar(cur)


def mark_failed(conn: Connection, run_uid: str, stage: Stage, range_id: str, reason: str) -> bool:
    """A running range failed for good (the run will end Degraded unless it is re-run)."""
    with conn, conn.cursor() as cur:
        cur.execute("UPDATE qd_ranges SET state = 'failed', finished_at = now(), reason = %s WHERE run_uid = %s"
                    " AND stage = %s AND range_id = %s AND state = 'running'",
                    (reason[:2000], run_uid, stage.value, range_id))
        return bool(cur.rowcount)


def split_range(conn: Connection, run_uid: str, range_id: str, *, stage: Stage = Stage.EXTRACT,
                reason: str = "OOMKilled") -> tuple[model.RangeRow, model.RangeRow] | None:
    """Bisect a running range's unfinished gazettes by id into `<id>a`/`<id>b` at depth + 1.

    None (and nothing changed) when the range is not running or has fewer than two unfinished
    gazettes: the caller promotes or quarantines it instead.
    """
    with conn, conn.cursor() as cur:
        row = _locked_row(cur, run_uid, stage, range_id)
        if row is None or row.state is not model.RangeState.RUNNING:
            return None
        sql, params = _unfinished(cur, run_uid, row)
        cur.execute(f"SELECT half, min(id), max(id), count(*) FROM (SELECT u.id, ntile(2) OVER (ORDER BY u.id)"
                    f" AS half FROM ({sql}) u) h GROUP BY half ORDER BY half", params)
        halves = cur.fetchall()
        if len(halves) < 2:
            return None
        children = tuple(model.RangeRow(
            range_id=f"{range_id}{suffix}", stage=stage, low=int(low), high=int(high), gazettes=int(n),
            tier=row.tier, depth=row.depth + 1, parent_id=range_id) for suffix, (_, low, high, n) in zip(
                "ab", halves, strict=True))
        cur.executemany(
            "INSERT INTO qd_ranges (run_uid, range_id, stage, low, high, gazettes, tier, depth, parent_id, state)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, 'pending')",
            [(run_uid, c.range_id, stage.value, c.low, c.high, c.gazettes, c.tier, c.depth, c.parent_id)
             for c in children])
        cur.execute("UPDATE qd_ranges SET state = 'split', finished_at = now(), reason = %s WHERE run_uid = %s"
                    " AND stage = %s AND range_id = %s", (reason, run_uid, stage.value, range_id))
        return children[0], children[1]


def promote_range(conn: Connection, run_uid: str, range_id: str, *, stage: Stage = Stage.EXTRACT,
                  tiers: int, reason: str = "OOMKilled") -> bool:
    """A running range goes back to pending at the next memory tier (False at the top tier)."""
    with conn, conn.cursor() as cur:
        cur.execute("UPDATE qd_ranges SET tier = tier + 1, state = 'pending', wave = NULL, job_name = NULL,"
                    " job_index = NULL, started_at = NULL, reason = %s WHERE run_uid = %s AND stage = %s"
                    " AND range_id = %s AND state = 'running' AND tier + 1 < %s",
                    (reason, run_uid, stage.value, range_id, tiers))
        return bool(cur.rowcount)


@dataclasses.dataclass(frozen=True)
class Quarantined:
    gazette_id: int
    file_path: str | None


def quarantine_range(conn: Connection, run_uid: str, range_id: str, *, stage: Stage = Stage.EXTRACT,
                     message: str = "OOM-killed alone at the top memory tier") -> Quarantined | None:
    """Quarantine the single unfinished gazette of a running range; the range counts as done.

    Three short transactions (find, statestore.quarantine, mark), each idempotent: replayed
    after a crash, the gazette is no longer unfinished and the range is simply closed.
    """
    with conn, conn.cursor() as cur:
        row = _locked_row(cur, run_uid, stage, range_id)
        if row is None or row.state is not model.RangeState.RUNNING:
            return None
        sql, params = _unfinished(cur, run_uid, row)
        cur.execute(f"{sql} ORDER BY g.id LIMIT 2", params)
        found = cur.fetchall()
    if len(found) > 1:
        return None
    if not found:
        mark_succeeded(conn, run_uid, stage, [range_id], reason="NothingLeft")
        return None
    gazette_id, file_path = int(found[0][0]), found[0][1]
    statestore.quarantine(conn, gazette_id, stage, message, run_uid)
    with conn, conn.cursor() as cur:
        cur.execute("UPDATE qd_ranges SET state = 'quarantined', finished_at = now(), reason = %s WHERE run_uid = %s"
                    " AND stage = %s AND range_id = %s AND state = 'running'",
                    (f"OOMKilled: gazette {gazette_id} quarantined", run_uid, stage.value, range_id))
    return Quarantined(gazette_id, file_path)


@dataclasses.dataclass(frozen=True)
class Applied:
    """What a decision did; `events` are ready to post (empty when nothing changed)."""

    decision: reactions.Decision
    applied: bool
    events: tuple[reactions.Event, ...] = ()


def apply(conn: Connection, run_uid: str, decision: reactions.Decision, *, tiers: int) -> Applied:
    """Carry out one reactions.Decision (`tiers` = how many memory tiers the range's stage has)."""
    d, action = decision, reactions.Action
    if d.action is action.SUCCEED:
        done = mark_succeeded(conn, run_uid, d.stage, [d.range_id],
                              reason=None if d.reason == "Succeeded" else d.reason) > 0
    elif d.action is action.FAIL:
        done = mark_failed(conn, run_uid, d.stage, d.range_id, d.reason)
    elif d.action is action.SPLIT:
        done = split_range(conn, run_uid, d.range_id, stage=d.stage, reason=d.reason) is not None
    elif d.action is action.PROMOTE:
        done = promote_range(conn, run_uid, d.range_id, stage=d.stage, tiers=tiers, reason=d.reason)
    else:
        quarantined = quarantine_range(conn, run_uid, d.range_id, stage=d.stage)
        if quarantined is None:
            return Applied(d, False)
        event = reactions.quarantine_event(d.stage, d.range_id, quarantined.gazette_id, quarantined.file_path)
        return Applied(d, True, (*d.events, event))
    return Applied(d, done, d.events if done else ())


class RerunBlockedError(Exception):
    """Re-queuing the failed ranges would work on gazettes another active run may still touch."""

    def __init__(self, blocking_run: str) -> None:
        super().__init__(f"the failed ranges overlap active run {blocking_run}")
        self.blocking_run = blocking_run


class RerunBusyError(Exception):
    """The planning lock is taken (a run is being planned): the rerun is tried again at the next pass."""


def rerun_failed(conn: Connection, run_uid: str) -> int:
    """Failed ranges go back to pending at their last tier; a finished run becomes active again.

    Checked like planning, under the planning lock: failed ranges no longer block other runs, so one
    planned since may hold the same gazettes of their scope within those ranges (RerunBlockedError
    names it; nothing is re-queued).
    """
    with conn, conn.cursor() as cur:
        if not planning.try_plan_lock(cur):
            raise RerunBusyError("another run is being planned")
        cur.execute("SELECT 1 FROM qd_ranges WHERE run_uid = %s AND state = 'failed' LIMIT 1", (run_uid,))
        if cur.fetchone() is None:
            return 0
        sel, _ = planning.run_selection(cur, run_uid)
        blocker = planning.overlapping_run(cur, run_uid, sel, my_ranges_in="failed")
        if blocker is not None:
            raise RerunBlockedError(blocker[1])
        cur.execute("UPDATE qd_ranges SET state = 'pending', wave = NULL, job_name = NULL, job_index = NULL,"
                    " started_at = NULL, finished_at = NULL, reason = NULL WHERE run_uid = %s AND state = 'failed'",
                    (run_uid,))
        count = cur.rowcount
        if count:
            planning.reopen_run(cur, run_uid)
        return int(count)
