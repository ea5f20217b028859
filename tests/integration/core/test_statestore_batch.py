"""The batched state writes of the extract pipeline, against real PostgreSQL rows.

Each must leave exactly what the one-gazette calls leave (the pipeline only changed how many
statements it takes).
"""

from __future__ import annotations

from typing import Any

import pytest

from qd_core import statestore
from qd_core.states import Stage

pytestmark = pytest.mark.integration

E = Stage.EXTRACT


@pytest.fixture()
def ids(conn: Any) -> list[int]:
    with conn.cursor() as cur:
        cur.execute("INSERT INTO territories VALUES ('2704302', 'Maceió', 'AL', 'Alagoas')")
        cur.execute(
            "INSERT INTO gazettes (source_text, date, edition_number, is_extra_edition, power, file_checksum,"
            " file_path, file_url, scraped_at, created_at, territory_id, processed)"
            " SELECT '', '2024-03-01', '1', FALSE, 'executive', 'sum' || g, 'p/' || g || '.pdf', 'https://x.invalid',"
            " now(), now(), '2704302', FALSE FROM generate_series(1, 5) g RETURNING id")
        return sorted(int(r[0]) for r in cur.fetchall())


def rows(conn: Any) -> dict[int, tuple[Any, ...]]:
    with conn.cursor() as cur:
        cur.execute("SELECT gazette_id, state, attempts, run_id, source_bytes, text_bytes, documents"
                    " FROM qd_gazette_state WHERE stage = 'extract'")
        return {r[0]: tuple(r[1:]) for r in cur.fetchall()}


def test_claim_many_counts_attempts_like_claim(conn: Any, ids: list[int]) -> None:
    statestore.claim(conn, ids[0], E, "r1")
    statestore.fail(conn, ids[0], E, statestore.ErrorClass.TIKA, "x", attempts=1, max_attempts=5)
    attempts = statestore.claim_many(conn, ids, E, "r2")
    assert attempts == {ids[0]: 2, **{g: 1 for g in ids[1:]}}
    assert {g: r[:3] for g, r in rows(conn).items()} == {g: ("running", attempts[g], "r2") for g in ids}
    assert statestore.claim_many(conn, [], E, "r2") == {}


def test_succeed_many_writes_state_documents_and_processed_in_one_go(conn: Any, ids: list[int]) -> None:
    statestore.claim_many(conn, ids, E, "r")
    done = ids[:3]
    successes = [statestore.Success({"id": g, "file_checksum": f"sum{i + 1}"}, 100 + g, 10 + g,
                                    [statestore.Document(f"doc{g}", "2704302", f"p/{g}.txt", 10 + g,
                                                         truncated=g == ids[0])])
                 for i, g in enumerate(done)]
    # Upstream's statement also checks the checksum: a changed file is not marked processed.
    successes[2] = statestore.Success({"id": done[2], "file_checksum": "changed"}, 1, 1, [])
    statestore.succeed_many(conn, successes, E)
    state = rows(conn)
    assert state[done[0]] == ("succeeded", 1, "r", 100 + done[0], 10 + done[0], 1)
    assert state[done[2]][0] == "succeeded" and state[done[2]][5] == 0
    assert all(state[g][0] == "running" for g in ids[3:])
    with conn.cursor() as cur:
        cur.execute("SELECT id, processed FROM gazettes")
        processed = dict(cur.fetchall())
        cur.execute("SELECT gazette_id, doc_id, txt_key, truncated FROM qd_gazette_documents ORDER BY gazette_id")
        docs = cur.fetchall()
    assert processed == {ids[0]: True, ids[1]: True, ids[2]: False, ids[3]: False, ids[4]: False}
    assert docs == [(ids[0], f"doc{ids[0]}", f"p/{ids[0]}.txt", True), (ids[1], f"doc{ids[1]}", f"p/{ids[1]}.txt",
                                                                        False)]


def test_release_many_puts_only_running_rows_back_without_burning_an_attempt(conn: Any, ids: list[int]) -> None:
    statestore.claim_many(conn, ids, E, "r")
    statestore.succeed_many(conn, [statestore.Success({"id": ids[0], "file_checksum": "sum1"}, 1, 1, [])], E)
    statestore.release_many(conn, ids, E)
    state = rows(conn)
    assert state[ids[0]][:2] == ("succeeded", 1)
    assert all(state[g][:2] == ("pending", 0) for g in ids[1:])
