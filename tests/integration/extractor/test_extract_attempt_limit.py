"""QD_MAX_ATTEMPTS through the CLI: a gazette whose download keeps failing is retried, then left alone.

The failure is real: MinIO refuses a key with an empty path segment (`a//b.pdf`) with HTTP 400
XMinioInvalidObjectName, which is neither a 404 nor an outage, so the extractor records it as a
transient `storage` failure and the range goes on. Such a key never heals: exactly the case the
attempt limit exists for. (The same walk over the state table is in
tests/integration/core/test_attempt_limit.py; this one checks the CLI's wiring of the variables.)
"""

from __future__ import annotations

from typing import Any

import pytest

from qd_devtools import fixtures as fx

pytestmark = pytest.mark.integration

BAD_KEY = "2704302/2024-01-01/a//b.pdf"


def insert_bad_row(conn: Any) -> int:
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO gazettes (source_text, date, edition_number, is_extra_edition, power, file_checksum,"
            " file_path, file_url, scraped_at, created_at, territory_id, processed) VALUES ('', '2024-01-01', '1',"
            " FALSE, 'executive', md5('bad'), %s, 'https://x.invalid', now(), now(), '2704302', FALSE) RETURNING id",
            (BAD_KEY,))
        return int(cur.fetchone()[0])


def attempts(world: Any, gazette_id: int) -> tuple[Any, ...]:
    with world.conn.cursor() as cur:
        cur.execute("SELECT state, error_class, terminal, attempts, run_id FROM qd_gazette_state"
                    " WHERE gazette_id = %s AND stage = 'extract'", (gazette_id,))
        return tuple(cur.fetchone())


def test_storage_failure_is_retried_until_max_attempts(world) -> None:  # type: ignore[no-untyped-def]
    bad = insert_bad_row(world.conn)
    (good,) = world.load([fx.txt_utf8(seed=61)])
    limit = {"QD_MAX_ATTEMPTS": "2"}

    first = world.run("extract", QD_RUN_ID="hourly-1", **limit)
    assert first.returncode == 0, first.stderr[-2000:]  # one gazette's failure does not fail the range
    assert world.states()[good.id][0] == "succeeded"
    state = attempts(world, bad)
    assert state == ("failed", "storage", False, 1, "hourly-1"), state

    assert world.run("extract", QD_RUN_ID="hourly-2", **limit).returncode == 0
    assert attempts(world, bad) == ("failed", "storage", True, 2, "hourly-2")  # the limit: terminal now

    assert world.run("extract", QD_RUN_ID="hourly-3", **limit).returncode == 0
    assert attempts(world, bad) == ("failed", "storage", True, 2, "hourly-2")  # not selected any more

    assert world.run("extract", QD_RUN_ID="retry", QD_RETRY_TERMINAL="true", **limit).returncode == 0
    assert attempts(world, bad) == ("failed", "storage", True, 3, "retry")  # asked for: tried once more
    assert world.states()[good.id][0] == "succeeded"
