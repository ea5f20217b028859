"""Writes to our state table: every transition of a gazette in a stage goes through here.

Each call is one short transaction, so a killed pod leaves at worst the few rows it had in flight
in `running` (which the next run treats as pending). Success and `gazettes.processed` are written in the same
transaction, with upstream's exact statement.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import psycopg2.extensions
import psycopg2.extras

from qd_core.states import ErrorClass, Stage, State, is_terminal

#: Upstream's statement (tasks/gazette_text_extraction.py), unchanged.
MARK_PROCESSED = "UPDATE gazettes SET processed = True WHERE id = %(id)s AND file_checksum = %(file_checksum)s"

_CLAIM = """
INSERT INTO qd_gazette_state (gazette_id, stage, state, attempts, run_id, started_at, updated_at)
VALUES (%(id)s, %(stage)s, 'running', 1, %(run)s, now(), now())
ON CONFLICT (gazette_id, stage) DO UPDATE SET state = 'running', attempts = qd_gazette_state.attempts + 1,
  run_id = EXCLUDED.run_id, started_at = now(), finished_at = NULL, updated_at = now(),
  error_class = NULL, error_message = NULL, terminal = FALSE
RETURNING attempts
"""


@dataclasses.dataclass(frozen=True)
class Document:
    """An index document a gazette produced."""

    doc_id: str
    territory_id: str
    txt_key: str
    text_bytes: int
    truncated: bool = False


def claim(conn: psycopg2.extensions.connection, gazette_id: int, stage: Stage, run_id: str) -> int:
    """Mark a gazette running in a stage; return its attempt number."""
    with conn, conn.cursor() as cur:
        cur.execute(_CLAIM, {"id": gazette_id, "stage": stage.value, "run": run_id})
        row = cur.fetchone()
        assert row is not None  # INSERT … RETURNING always returns the row
        return int(row[0])


def claim_many(conn: psycopg2.extensions.connection, gazette_ids: Sequence[int], stage: Stage,
               run_id: str) -> dict[int, int]:
    """`claim` for several gazettes in one statement (the extract pipeline claims a few ahead)."""
    if not gazette_ids:
        return {}
    with conn, conn.cursor() as cur:
        rows = psycopg2.extras.execute_values(
            cur, "INSERT INTO qd_gazette_state (gazette_id, stage, state, attempts, run_id, started_at, updated_at)"
            " VALUES %s ON CONFLICT (gazette_id, stage) DO UPDATE SET state = 'running',"
            " attempts = qd_gazette_state.attempts + 1, run_id = EXCLUDED.run_id, started_at = now(),"
            " finished_at = NULL, updated_at = now(), error_class = NULL, error_message = NULL, terminal = FALSE"
            " RETURNING gazette_id, attempts",
            [(int(g), stage.value, run_id) for g in gazette_ids],
            template="(%s, %s, 'running', 1, %s, now(), now())", fetch=True)
        return {int(g): int(a) for g, a in rows}


@dataclasses.dataclass(frozen=True)
class Success:
    """One gazette's success, for `succeed_many`."""

    gazette: dict[str, Any]
    source_bytes: int | None
    text_bytes: int | None
    documents: Sequence[Document]


def succeed_many(conn: psycopg2.extensions.connection, successes: Sequence[Success], stage: Stage, *,
                 mark_processed: bool = True) -> None:
    """`succeed` for every gazette a bulk request settled, in one transaction of four round trips.

    Upstream's `processed` statement is kept verbatim (sent as one batch).
    """
    if not successes:
        return
    ids = [int(s.gazette["id"]) for s in successes]
    with conn, conn.cursor() as cur:
        psycopg2.extras.execute_values(
            cur, "UPDATE qd_gazette_state s SET state = 'succeeded', finished_at = now(), updated_at = now(),"
            " source_bytes = v.source_bytes, text_bytes = v.text_bytes, documents = v.documents,"
            " error_class = NULL, error_message = NULL, terminal = FALSE"
            " FROM (VALUES %s) AS v(gazette_id, stage, source_bytes, text_bytes, documents)"
            " WHERE s.gazette_id = v.gazette_id AND s.stage = v.stage",
            [(int(s.gazette["id"]), stage.value, s.source_bytes, s.text_bytes, len(s.documents))
             for s in successes],
            template="(%s::bigint, %s, %s::bigint, %s::bigint, %s::int)", page_size=1000)
        if stage is not Stage.EXTRACT:
            return
        cur.execute("DELETE FROM qd_gazette_documents WHERE gazette_id = ANY(%s)", (ids,))
        rows = [(int(s.gazette["id"]), d.doc_id, d.territory_id, d.txt_key, d.text_bytes, d.truncated)
                for s in successes for d in s.documents]
        if rows:
            psycopg2.extras.execute_values(
                cur, "INSERT INTO qd_gazette_documents (gazette_id, doc_id, territory_id, txt_key, text_bytes,"
                " truncated) VALUES %s ON CONFLICT (gazette_id, doc_id) DO UPDATE SET"
                " territory_id = EXCLUDED.territory_id, txt_key = EXCLUDED.txt_key,"
                " text_bytes = EXCLUDED.text_bytes, truncated = EXCLUDED.truncated", rows, page_size=1000)
        if mark_processed:
            psycopg2.extras.execute_batch(
                cur, MARK_PROCESSED,
                [{"id": int(s.gazette["id"]), "file_checksum": s.gazette["file_checksum"]} for s in successes],
                page_size=1000)


def succeed(conn: psycopg2.extensions.connection, gazette: dict[str, Any] | Any, stage: Stage, *,
            source_bytes: int | None = None, text_bytes: int | None = None,
            documents: Sequence[Document] = (), mark_processed: bool = True) -> None:
    """Record success (and, for extraction, upstream's `processed = True`) atomically."""
    gid = int(gazette["id"])
    with conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE qd_gazette_state SET state = 'succeeded', finished_at = now(), updated_at = now(),"
            " source_bytes = %s, text_bytes = %s, documents = %s, error_class = NULL, error_message = NULL,"
            " terminal = FALSE WHERE gazette_id = %s AND stage = %s",
            (source_bytes, text_bytes, len(documents), gid, stage.value))
        if stage is Stage.EXTRACT:
            cur.execute("DELETE FROM qd_gazette_documents WHERE gazette_id = %s", (gid,))
            for d in documents:
                cur.execute(
                    "INSERT INTO qd_gazette_documents"
                    " (gazette_id, doc_id, territory_id, txt_key, text_bytes, truncated)"
                    " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (gazette_id, doc_id) DO UPDATE SET"
                    " territory_id = EXCLUDED.territory_id, txt_key = EXCLUDED.txt_key,"
                    " text_bytes = EXCLUDED.text_bytes, truncated = EXCLUDED.truncated",
                    (gid, d.doc_id, d.territory_id, d.txt_key, d.text_bytes, d.truncated))
            if mark_processed:
                cur.execute(MARK_PROCESSED, {"id": gid, "file_checksum": gazette["file_checksum"]})


def fail(conn: psycopg2.extensions.connection, gazette_id: int, stage: Stage, error: ErrorClass, message: str,
         *, attempts: int, max_attempts: int, source_bytes: int | None = None) -> bool:
    """Record a failure; return whether it is terminal (by class, or by too many attempts)."""
    terminal = is_terminal(error) or attempts >= max_attempts
    with conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE qd_gazette_state SET state = 'failed', finished_at = now(), updated_at = now(),"
            " error_class = %s, error_message = %s, terminal = %s, source_bytes = COALESCE(%s, source_bytes)"
            " WHERE gazette_id = %s AND stage = %s",
            (error.value, message[:2000], terminal, source_bytes, gazette_id, stage.value))
    return terminal


def skip(conn: psycopg2.extensions.connection, gazette_id: int, stage: Stage, reason: str) -> None:
    """The stage had nothing to do for this gazette (e.g. no indexed document to search): done, no error."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE qd_gazette_state SET state = 'skipped', finished_at = now(), updated_at = now(),"
            " error_class = NULL, error_message = %s, terminal = FALSE WHERE gazette_id = %s AND stage = %s",
            (reason[:2000], gazette_id, stage.value))


def release(conn: psycopg2.extensions.connection, gazette_id: int, stage: Stage) -> None:
    """Put a gazette interrupted by shutdown or an outage back to pending, without burning an attempt."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE qd_gazette_state SET state = 'pending', attempts = greatest(attempts - 1, 0),"
            " started_at = NULL, updated_at = now() WHERE gazette_id = %s AND stage = %s AND state = 'running'",
            (gazette_id, stage.value))


def release_many(conn: psycopg2.extensions.connection, gazette_ids: Sequence[int], stage: Stage) -> None:
    """`release` for every gazette in flight when the extract pipeline stops, in one statement."""
    if not gazette_ids:
        return
    with conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE qd_gazette_state SET state = 'pending', attempts = greatest(attempts - 1, 0),"
            " started_at = NULL, updated_at = now() WHERE gazette_id = ANY(%s) AND stage = %s AND state = 'running'",
            ([int(g) for g in gazette_ids], stage.value))


def quarantine(conn: psycopg2.extensions.connection, gazette_id: int, stage: Stage, message: str,
               run_id: str) -> None:
    """An OOM-killed gazette alone at the top memory tier: terminal, never retried unless asked."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "INSERT INTO qd_gazette_state (gazette_id, stage, state, attempts, error_class, error_message,"
            " terminal, run_id, finished_at, updated_at) VALUES (%s, %s, 'quarantined', 1, %s, %s, TRUE, %s,"
            " now(), now()) ON CONFLICT (gazette_id, stage) DO UPDATE SET state = 'quarantined',"
            " error_class = EXCLUDED.error_class, error_message = EXCLUDED.error_message, terminal = TRUE,"
            " run_id = EXCLUDED.run_id, finished_at = now(), updated_at = now()",
            (gazette_id, stage.value, ErrorClass.OOM.value, message[:2000], run_id))


def counts(conn: psycopg2.extensions.connection, run_id: str, stage: Stage) -> dict[State, int]:
    """Gazettes of a run per state in a stage (progress for the operator and the summary)."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT state, count(*) FROM qd_gazette_state WHERE run_id = %s AND stage = %s GROUP BY state",
                    (run_id, stage.value))
        return {State(state): int(n) for state, n in cur.fetchall()}
