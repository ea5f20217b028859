"""The range walk reads each keyset page through a server-side cursor, `QD_FETCH_SIZE` rows per round trip.

A client-side cursor would hold a whole page in memory at once: for upstream's page of 1000 rows that
is 1000 rows in the driver plus our dicts. Observed on the real connection: while the rows arrive,
`pg_cursors` (the session's open portals) lists the runner's cursor, and psycopg2's `rownumber`
(the position in the block last fetched) never passes the fetch size and starts again with each
FETCH; between pages no cursor is left open.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from typing import Any

import psycopg2
import psycopg2.extensions
import pytest

import qd_testkit
from qd_extractor.runner import RangeRunner
from qd_extractor.settings import ExtractorSettings

pytestmark = pytest.mark.integration

PAGE, FETCH, GAZETTES = 10, 4, 25


class Watched(psycopg2.extensions.cursor):
    """A plain psycopg2 cursor that, for each row it yields, notes how that row reached the client."""

    seen: list[dict[str, Any]]

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while True:
            try:
                row = super().__next__()
            except StopIteration:
                return
            self.seen.append({"name": self.name, "itersize": self.itersize, "rownumber": self.rownumber,
                              "open": open_cursors(self.connection)})
            yield row


def open_cursors(conn: psycopg2.extensions.connection) -> list[tuple[str, bool, str]]:
    """The session's open cursors, read on the same connection (pg_cursors is per session)."""
    with conn.cursor(cursor_factory=psycopg2.extensions.cursor) as cur:
        cur.execute("SELECT name, is_holdable, statement FROM pg_cursors")
        return list(cur.fetchall())


@pytest.fixture()
def read_conn(pg_dsn: str, schema: str) -> Iterator[psycopg2.extensions.connection]:
    conn = psycopg2.connect(pg_dsn, options=f"-c search_path={schema}")  # not autocommit, as the runner's
    try:
        yield conn
    finally:
        conn.close()


def test_pages_arrive_through_a_server_side_cursor_in_fetch_size_blocks(
        conn: Any, read_conn: psycopg2.extensions.connection) -> None:
    ids = qd_testkit.seed_gazettes(conn, GAZETTES)
    env = {**os.environ, "EXECUTION_MODE": "ALL", "GAZETTE_QUERY_PAGE_SIZE": str(PAGE), "QD_FETCH_SIZE": str(FETCH),
           "QUERIDO_DIARIO_FILES_ENDPOINT": "files.invalid", "MEMORY_LIMIT_BYTES": str(256 << 20)}
    settings = ExtractorSettings.from_env(env)
    seen: list[dict[str, Any]] = []
    read_conn.cursor_factory = type("Probe", (Watched,), {"seen": seen})
    # Only the page walk is exercised: it needs the settings and the read connection, nothing else.
    runner = RangeRunner(settings, read_conn, conn, None, None, logging.getLogger("test"))  # type: ignore[arg-type]

    pages: list[list[int]] = []
    for page in runner.pages(min(ids), max(ids)):
        pages.append([int(row["id"]) for row in page])
        assert open_cursors(read_conn) == [], "a page's cursor stayed open after the page was read"
        read_conn.rollback()

    assert pages == [sorted(ids, reverse=True)[i:i + PAGE] for i in range(0, GAZETTES, PAGE)]
    assert len(seen) == GAZETTES  # every row came through the runner's cursor, row by row
    assert {(s["name"], s["itersize"]) for s in seen} == {("qd_page", FETCH)}
    for s in seen:
        ((name, holdable, statement),) = s["open"]
        assert (name, holdable) == ("qd_page", False) and statement.startswith('DECLARE "qd_page" CURSOR')
    # rownumber counts within the block of the last FETCH: 1..FETCH, then again, page after page.
    expected = [n % FETCH + 1 for size in (10, 10, 5) for n in range(size)]
    assert [s["rownumber"] for s in seen] == expected
