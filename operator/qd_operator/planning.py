"""Planning a run in SQL: overlap check, range boundaries, empty selections.

The operator never holds the list of gazette ids: boundaries are cut with a window function
and inserted with one `INSERT … SELECT`, so planning a million gazettes costs the operator a
few rows of memory. Everything happens in one transaction under an advisory lock, which
serialises planners (two runs cannot both pass the overlap check against each other), and the
plan is keyed by the CR's uid, so planning again is a no-op.

Every function takes a psycopg2 connection and runs its own transaction (`with conn:` opens one
even on an autocommit connection); the connection must not be inside another transaction.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from typing import Any

import psycopg2.extensions

from qd_core import selection
from qd_core.states import Stage
from qd_operator import model, spec

#: Fixed key for pg_advisory_xact_lock ("qd_plans"): serialises overlap checks and plans.
PLAN_LOCK = 0x71645F706C616E73
_PARAM = re.compile(r"%\((\w+)\)s")
_FROM = "FROM gazettes g INNER JOIN territories t ON t.id = g.territory_id"

Connection = psycopg2.extensions.connection


class Outcome(enum.StrEnum):
    PLANNED = "Planned"
    EMPTY = "NothingToDo"
    OVERLAP = "SelectionOverlaps"
    BUSY = "Planning"  #: another run holds the planning lock: try again at the next pass


@dataclasses.dataclass(frozen=True)
class PlanResult:
    outcome: Outcome
    ranges: int = 0
    gazettes: int = 0
    #: False when the plan already existed (a restarted operator, a retried handler).
    new: bool = True
    #: `namespace/name` of the active run whose selection overlaps (OVERLAP only).
    blocking_run: str | None = None
    #: That run's uid (to tell a live blocker from one whose CR is gone).
    blocking_uid: str | None = None

    @property
    def message(self) -> str:
        if self.outcome is Outcome.OVERLAP:
            return f"the selection overlaps active run {self.blocking_run}; retrying until it finishes"
        if self.outcome is Outcome.EMPTY:
            return "no gazette matches the selection"
        if self.outcome is Outcome.BUSY:
            return "another run is being planned; retrying"
        return f"{self.gazettes} gazettes in {self.ranges} ranges"


def prefixed(sql: str, params: dict[str, Any], prefix: str) -> tuple[str, dict[str, Any]]:
    """Rename every `%(name)s` to `%(<prefix>name)s`, so two predicates can share one query."""
    return _PARAM.sub(lambda m: f"%({prefix}{m.group(1)})s", sql), {f"{prefix}{k}": v for k, v in params.items()}


def try_plan_lock(cur: Any) -> bool:
    """Take the planning lock for this transaction if it is free (planning and reruns serialise on it)."""
    cur.execute("SELECT pg_try_advisory_xact_lock(%s)", (PLAN_LOCK,))
    return bool(cur.fetchone()[0])


def _existing_plan(cur: Any, uid: str) -> PlanResult | None:
    """The result for a run planned earlier (the plan is made once), or None."""
    cur.execute("SELECT 1 FROM qd_runs WHERE uid = %s", (uid,))
    if cur.fetchone() is None:
        return None
    ranges, gazettes = planned_totals(cur, uid)
    return PlanResult(Outcome.PLANNED if gazettes else Outcome.EMPTY, ranges, gazettes, new=False)


def plan(conn: Connection, *, uid: str, namespace: str, name: str, run: spec.RunSpec) -> PlanResult:
    """Plan the run once: check overlaps, then cut its pending gazettes into ranges."""
    with conn, conn.cursor() as cur:
        # Fast path without the lock: a plan, once made, is never removed (every pass of every run
        # would otherwise queue on the one planning lock).
        if (existing := _existing_plan(cur, uid)) is not None:
            return existing
    with conn, conn.cursor() as cur:
        if not try_plan_lock(cur):  # never wait: the connection is one of the operator's few pooled ones
            return PlanResult(Outcome.BUSY)
        if (existing := _existing_plan(cur, uid)) is not None:
            return existing
        blocker = overlapping_run(cur, uid, run.selection)
        if blocker is not None:
            return PlanResult(Outcome.OVERLAP, blocking_run=blocker[1], blocking_uid=blocker[0])
        cur.execute("INSERT INTO qd_runs (uid, namespace, name, selection, stages) VALUES (%s, %s, %s, %s, %s)",
                    (uid, namespace, name, json.dumps(spec.selection_to_json(run.selection)),
                     [s.value for s in run.stages]))
        _insert_ranges(cur, uid, run)
        ranges, gazettes = planned_totals(cur, uid)
        if ranges == 0:
            cur.execute("UPDATE qd_runs SET state = %s, finished_at = now() WHERE uid = %s",
                        (model.RunState.SUCCEEDED.value, uid))
            return PlanResult(Outcome.EMPTY)
        return PlanResult(Outcome.PLANNED, ranges, gazettes)


def overlapping_run(cur: Any, uid: str, mine: selection.Selection,
                    *, my_ranges_in: str | None = None) -> tuple[str, str] | None:
    """(uid, namespace/name) of the first other active run that may still touch a gazette `mine` selects.

    What the other run may still touch: the gazettes of its scope (dates, territories) inside its
    unfinished ranges, whatever their `processed` flag; its own mode predicate would stop matching
    them once extracted (UNPROCESSED) or once a day has passed (DAILY), while its excerpts stage or
    a retry still works on them. With `my_ranges_in` (a range state), this run's side is likewise its
    scope within its own ranges in that state (the failed ones, before they are re-queued).
    """
    if my_ranges_in is None:
        mine_sql, mine_params = prefixed(*mine.predicate(Stage.EXTRACT), "a_")
    else:
        mine_sql, mine_params = _held(mine, uid, [my_ranges_in], "a_")
    cur.execute("SELECT uid, namespace, name, selection FROM qd_runs WHERE finished_at IS NULL AND uid <> %s"
                " ORDER BY created_at", (uid,))
    for other_uid, namespace, name, raw in cur.fetchall():
        theirs = spec.parse_selection(raw if isinstance(raw, dict) else json.loads(raw), "qd_runs.selection")
        their_sql, their_params = _held(theirs, str(other_uid), ["pending", "running"], "b_")
        cur.execute(f"SELECT 1 {_FROM} WHERE {mine_sql} AND {their_sql} LIMIT 1", {**mine_params, **their_params})
        if cur.fetchone() is not None:
            return str(other_uid), f"{namespace}/{name}"
    return None


def _held(sel: selection.Selection, run_uid: str, states: list[str], prefix: str) -> tuple[str, dict[str, Any]]:
    """The gazettes of `sel`'s scope inside `run_uid`'s ranges in `states` (a condition over `g`)."""
    scope, params = sel.predicate(Stage.EXTRACT, scope_only=True)
    return prefixed(f"{scope} AND EXISTS (SELECT 1 FROM qd_ranges r WHERE r.run_uid = %(run)s"
                    " AND r.state = ANY(%(states)s) AND g.id BETWEEN r.low AND r.high)",
                    {**params, "run": run_uid, "states": states}, prefix)


def _insert_ranges(cur: Any, uid: str, run: spec.RunSpec) -> None:
    """Cut the pending gazettes into ranges of ≤ gazettesPerRange (and ≈ targetBytesPerRange) by id."""
    where, params = run.selection.predicate(Stage.EXTRACT)
    params = {**params, "run": uid, "per": run.gazettes_per_range, "target": run.target_bytes_per_range}
    if run.target_bytes_per_range > 0:
        # A new range starts when either the count or the summed known source bytes (of earlier
        # attempts) crosses a multiple of its limit; dense_rank renumbers the keys without gaps.
        buckets = f"""
          SELECT id, dense_rank() OVER (ORDER BY k) - 1 AS b FROM (
            SELECT g.id, (row_number() OVER (ORDER BY g.id) - 1) / %(per)s
                   + floor(coalesce(sum(qs.source_bytes) OVER (ORDER BY g.id ROWS BETWEEN UNBOUNDED PRECEDING
                      AND 1 PRECEDING), 0) / %(target)s)::bigint AS k
            {_FROM} LEFT JOIN qd_gazette_state qs ON qs.gazette_id = g.id AND qs.stage = 'extract'
            WHERE {where}) keyed"""
    else:
        buckets = f"SELECT g.id, (row_number() OVER (ORDER BY g.id) - 1) / %(per)s AS b {_FROM} WHERE {where}"
    cur.execute(f"""
        INSERT INTO qd_ranges (run_uid, range_id, stage, low, high, gazettes, tier, depth, state)
        SELECT %(run)s, 'r' || CASE WHEN b < 10000 THEN lpad(b::text, 4, '0') ELSE b::text END, 'extract',
               min(id), max(id), count(*), 0, 0, 'pending'
        FROM ({buckets}) bucketed GROUP BY b""", params)


def planned_totals(cur: Any, uid: str) -> tuple[int, int]:
    """Root extract ranges and their gazettes, as planned (splits do not change the totals)."""
    cur.execute("SELECT count(*), coalesce(sum(gazettes), 0) FROM qd_ranges"
                " WHERE run_uid = %s AND stage = 'extract' AND parent_id IS NULL", (uid,))
    row = cur.fetchone()
    return int(row[0]), int(row[1])


def run_selection(cur: Any, uid: str) -> tuple[selection.Selection, tuple[Stage, ...]]:
    """A planned run's selection and stages, as stored (for the split and pending queries)."""
    cur.execute("SELECT selection, stages FROM qd_runs WHERE uid = %s", (uid,))
    row = cur.fetchone()
    if row is None:
        raise LookupError(f"run {uid} is not planned")
    raw, stages = row
    sel = spec.parse_selection(raw if isinstance(raw, dict) else json.loads(raw), "qd_runs.selection")
    return sel, tuple(Stage(s) for s in stages)


def finish_run(conn: Connection, uid: str, state: model.RunState) -> bool:
    """Mark a run finished (no longer active: it stops blocking overlapping runs)."""
    with conn, conn.cursor() as cur:
        cur.execute("UPDATE qd_runs SET state = %s, finished_at = coalesce(finished_at, now())"
                    " WHERE uid = %s AND (finished_at IS NULL OR state <> %s)", (state.value, uid, state.value))
        return bool(cur.rowcount)


def reopen_run(cur: Any, uid: str) -> None:
    """A finished run becomes active again (its failed ranges were re-queued)."""
    cur.execute("UPDATE qd_runs SET state = 'active', finished_at = NULL WHERE uid = %s AND state <> 'deleted'",
                (uid,))
