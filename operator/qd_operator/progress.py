"""A run's progress from PostgreSQL: a handful of grouped counts, whatever the run's size.

Gazette counts come from `qd_gazette_state` by run id (its `run_id` is the run's uid; the
index `qd_gazette_state_run (run_id, stage, state)` answers them), range counts from
`qd_ranges`; only the first 20 failed ranges and quarantined gazettes are listed.
"""

from __future__ import annotations

import collections

from qd_core.states import Stage, State
from qd_operator import model, planning, status
from qd_operator.planning import Connection


def load(conn: Connection, run_uid: str) -> status.Progress | None:
    """The run's counts, or None when it has not been planned."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT stages, created_at FROM qd_runs WHERE uid = %s", (run_uid,))
        run = cur.fetchone()
        if run is None:
            return None
        stages = tuple(s for s in Stage if s.value in run[0])
        _, planned = planning.planned_totals(cur, run_uid)
        cur.execute("SELECT state, count(*) FROM qd_ranges WHERE run_uid = %s GROUP BY state", (run_uid,))
        ranges = {model.RangeState(state): int(n) for state, n in cur.fetchall()}
        cur.execute("SELECT stage, state, count(*) FROM qd_gazette_state WHERE run_id = %s GROUP BY stage, state",
                    (run_uid,))
        gazettes: dict[Stage, dict[State, int]] = collections.defaultdict(dict)
        for stage, state, n in cur.fetchall():
            gazettes[Stage(stage)][State(state)] = int(n)
        cur.execute("SELECT range_id, low, high, stage, reason FROM qd_ranges WHERE run_uid = %s AND state = 'failed'"
                    " ORDER BY stage, low LIMIT %s", (run_uid, status.MAX_LISTED))
        failed = [{"id": r, "low": int(lo), "high": int(hi), "stage": st, "reason": (why or "")[:512]}
                  for r, lo, hi, st, why in cur.fetchall()]
        cur.execute("SELECT s.gazette_id, g.file_path FROM qd_gazette_state s JOIN gazettes g ON g.id = s.gazette_id"
                    " WHERE s.run_id = %s AND s.state = 'quarantined' ORDER BY s.gazette_id LIMIT %s",
                    (run_uid, status.MAX_LISTED))
        quarantined = [{"gazetteId": int(gid), "filePath": path or ""} for gid, path in cur.fetchall()]
    return status.Progress(stages=stages, planned_gazettes=planned, ranges=ranges, gazettes=dict(gazettes),
                           failed_ranges=failed, quarantined=quarantined, planned_at=run[1])
