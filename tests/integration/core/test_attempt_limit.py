"""The attempt limit, against real PostgreSQL rows: transient failures are retried until QD_MAX_ATTEMPTS.

Each "run" below does what the extract pipeline does for a gazette (runner.RangeRunner and
pipeline.Pipeline): select a keyset page with the run's id, `claim_many` (which counts the
attempt), then `fail` with the claimed attempt number and the configured limit. The settings come
from the environment variable names the Job sets, parsed by the extractor's own settings class.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from qd_core import selection, statestore
from qd_core.states import ErrorClass, Stage
from qd_extractor.settings import ExtractorSettings

pytestmark = pytest.mark.integration

E = Stage.EXTRACT
MAX = 3


def settings(**extra: str) -> ExtractorSettings:
    """Settings parsed from the test services' environment plus `extra` (nothing is contacted)."""
    env = {**os.environ, "OPENSEARCH_INDEX": "unused", "USE_RELATIVE_FILE_PATHS": "true",
           "EXECUTION_MODE": "UNPROCESSED", "QD_MAX_ATTEMPTS": str(MAX), **extra}
    return ExtractorSettings.from_env(env)


@pytest.fixture()
def gazettes(conn: Any) -> tuple[int, int]:
    """A gazette that keeps failing with a transient class, and one that is never touched."""
    with conn.cursor() as cur:
        cur.execute("INSERT INTO territories VALUES ('2704302', 'Maceió', 'AL', 'Alagoas')")
        cur.execute(
            "INSERT INTO gazettes (source_text, date, edition_number, is_extra_edition, power, file_checksum,"
            " file_path, file_url, scraped_at, created_at, territory_id, processed)"
            " SELECT '', '2024-03-01', '1', FALSE, 'executive', 'sum' || g, 'p/' || g || '.pdf',"
            " 'https://x.invalid', now(), now(), '2704302', FALSE FROM generate_series(1, 2) g RETURNING id")
        flaky, untouched = sorted(int(r[0]) for r in cur.fetchall())
    return flaky, untouched


def selected(conn: Any, sel: selection.Selection, run_id: str) -> list[int]:
    """The first keyset page a Job of `run_id` would read over every id."""
    sql, params = sel.page_sql(low=0, high=2**31 - 1, before=None, limit=100, run_id=run_id)
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return [int(r[0]) for r in cur.fetchall()]


def state(conn: Any, gazette_id: int) -> tuple[Any, ...] | None:
    with conn.cursor() as cur:
        cur.execute("SELECT state, error_class, terminal, attempts, run_id FROM qd_gazette_state"
                    " WHERE gazette_id = %s AND stage = 'extract'", (gazette_id,))
        row = cur.fetchone()
    return None if row is None else tuple(row)


def fail_once(conn: Any, s: ExtractorSettings, gazette_id: int, run_id: str) -> tuple[int, bool]:
    """One run's attempt at the gazette, failing with a transient class; (attempt number, terminal)."""
    attempts = statestore.claim_many(conn, [gazette_id], E, run_id)
    terminal = statestore.fail(conn, gazette_id, E, ErrorClass.STORAGE, "GET p/1.pdf: HTTP 503",
                               attempts=attempts[gazette_id], max_attempts=s.max_attempts)
    return attempts[gazette_id], terminal


def test_transient_failure_is_retried_until_the_limit_then_only_when_asked(conn: Any,
                                                                           gazettes: tuple[int, int]) -> None:
    flaky, untouched = gazettes
    s = settings()
    assert s.max_attempts == MAX and not s.selection.retry_terminal
    for run in range(1, MAX + 1):
        run_id = f"hourly-{run}"
        assert selected(conn, s.selection, run_id) == [untouched, flaky], run  # still pending before the limit
        assert fail_once(conn, s, flaky, run_id) == (run, run == MAX)
        assert state(conn, flaky) == ("failed", "storage", run == MAX, run, run_id)

    # At the limit the failure counts as terminal: later runs leave it alone, attempts stay put.
    assert selected(conn, s.selection, "hourly-4") == [untouched]
    assert selected(conn, settings(EXECUTION_MODE="ALL").selection, "hourly-4") == [untouched]
    assert state(conn, flaky) == ("failed", "storage", True, MAX, f"hourly-{MAX}")

    # Asked to retry terminal failures, a run selects it again; one more failure is terminal again
    # (the count goes on from the limit, it does not restart).
    retry = settings(QD_RETRY_TERMINAL="true")
    assert retry.selection.retry_terminal
    assert selected(conn, retry.selection, "retry-1") == [untouched, flaky]
    assert fail_once(conn, retry, flaky, "retry-1") == (MAX + 1, True)
    assert selected(conn, s.selection, "hourly-5") == [untouched]

    # A retry that succeeds clears the failure for good.
    assert statestore.claim_many(conn, [flaky], E, "retry-2") == {flaky: MAX + 2}
    statestore.succeed_many(conn, [statestore.Success({"id": flaky, "file_checksum": "sum1"}, 1, 1, [])], E)
    assert state(conn, flaky) == ("succeeded", None, False, MAX + 2, "retry-2")
    assert selected(conn, retry.selection, "retry-3") == [untouched]  # processed now: UNPROCESSED skips it
    assert state(conn, untouched) is None  # the other gazette was only ever selected, never claimed
