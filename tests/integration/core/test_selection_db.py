"""The pending definition, run against real PostgreSQL rows."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import psycopg2
import pytest

from qd_core import db, selection
from qd_core.states import Stage

pytestmark = pytest.mark.integration

NOW = dt.datetime.now(dt.UTC).replace(tzinfo=None)


def insert(cur: Any, *, territory: str = "2704302", date: str = "2024-03-01", processed: bool | None = False,
           path_ext: str = ".pdf", scraped: dt.datetime | None = None) -> int:
    cur.execute(
        "INSERT INTO gazettes (source_text, date, edition_number, is_extra_edition, power, file_checksum,"
        " file_path, file_url, scraped_at, created_at, territory_id, processed)"
        " VALUES ('', %s, '1', FALSE, 'executive', md5(random()::text), %s, 'https://x.invalid', %s, now(), %s, %s)"
        " RETURNING id",
        (date, f"{territory}/{date}/abc{path_ext}", scraped or NOW - dt.timedelta(days=3), territory, processed))
    return int(cur.fetchone()[0])


@pytest.fixture()
def cur(conn: Any) -> Any:
    with conn.cursor() as c:
        c.execute("INSERT INTO territories VALUES ('2704302', 'Maceió', 'AL', 'Alagoas'),"
                  " ('2700300', 'Arapiraca', 'AL', 'Alagoas'), ('2700000', 'Associação', 'AL', 'Alagoas')")
        yield c


def select_ids(cur: Any, sel: selection.Selection, stage: Stage = Stage.EXTRACT) -> list[int]:
    sql, params = sel.page_sql(low=0, high=2**31 - 1, before=None, limit=1000, stage=stage)
    cur.execute(sql, params)
    return [row[0] for row in cur.fetchall()]


def test_unprocessed_mode_skips_processed_null_and_zip(cur: Any) -> None:
    pending = insert(cur)
    insert(cur, processed=True)
    insert(cur, processed=None)  # upstream: NULL is not selected
    insert(cur, path_ext=".zip")
    upper_zip = insert(cur, path_ext=".ZIP")  # upstream's filter is case-sensitive
    assert select_ids(cur, selection.Selection(mode=selection.Mode.UNPROCESSED)) == [upper_zip, pending]


def test_daily_mode_is_the_last_day(cur: Any) -> None:
    fresh = insert(cur, scraped=NOW - dt.timedelta(hours=2), processed=True)
    insert(cur, scraped=NOW - dt.timedelta(days=2))
    assert select_ids(cur, selection.Selection(mode=selection.Mode.DAILY)) == [fresh]


def test_gazette_without_territory_row_is_not_selected(cur: Any) -> None:
    cur.execute("INSERT INTO territories VALUES ('9999999', 'Nowhere', 'XX', 'X')")
    orphan = insert(cur, territory="9999999")
    cur.execute("DELETE FROM gazettes WHERE id = %s", (orphan,))
    kept = insert(cur)
    assert select_ids(cur, selection.Selection(mode=selection.Mode.ALL)) == [kept]


def test_date_span_and_territories_filter(cur: Any) -> None:
    jan = insert(cur, date="2024-01-10")
    insert(cur, date="2024-02-10")
    insert(cur, territory="2700300", date="2024-01-11")
    sel = selection.Selection(mode=selection.Mode.ALL, date_from=dt.date(2024, 1, 1),
                              date_to=dt.date(2024, 1, 31), territories=("2704302",))
    assert select_ids(cur, sel) == [jan]


def test_terminal_failures_excluded_unless_asked(cur: Any) -> None:
    hopeless, transient, other_stage = insert(cur), insert(cur), insert(cur)
    cur.execute("INSERT INTO qd_gazette_state (gazette_id, stage, state, error_class, terminal) VALUES"
                " (%s, 'extract', 'failed', 'unsupported_type', TRUE),"
                " (%s, 'extract', 'failed', 'tika', FALSE),"
                " (%s, 'excerpts', 'failed', 'no_segmenter', TRUE)", (hopeless, transient, other_stage))
    sel = selection.Selection(mode=selection.Mode.UNPROCESSED)
    assert hopeless not in select_ids(cur, sel)
    assert {transient, other_stage} <= set(select_ids(cur, sel))
    assert hopeless in select_ids(cur, selection.Selection(mode=selection.Mode.UNPROCESSED, retry_terminal=True))
    assert other_stage not in select_ids(cur, sel, Stage.EXCERPTS)


def test_keyset_pages_see_every_row_while_processed_flips(cur: Any) -> None:
    """OFFSET paging skips about a page per page here; keyset paging must not skip any."""
    ids = [insert(cur) for _ in range(25)]
    sel = selection.Selection(mode=selection.Mode.UNPROCESSED)
    seen: list[int] = []
    before = None
    while True:
        sql, params = sel.page_sql(low=min(ids), high=max(ids), before=before, limit=7)
        cur.execute(sql, params)
        page = [row[0] for row in cur.fetchall()]
        if not page:
            break
        seen.extend(page)
        cur.execute("UPDATE gazettes SET processed = TRUE WHERE id = ANY(%s)", (page,))
        before = page[-1]
    assert seen == sorted(ids, reverse=True)


def test_range_bounds_are_inclusive(cur: Any) -> None:
    ids = [insert(cur) for _ in range(5)]
    sql, params = selection.Selection(mode=selection.Mode.ALL).page_sql(
        low=ids[1], high=ids[3], before=None, limit=100)
    cur.execute(sql, params)
    assert [r[0] for r in cur.fetchall()] == [ids[3], ids[2], ids[1]]


def test_migrate_is_idempotent_and_safe_concurrently(pg_dsn: str, schema: str) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        c = psycopg2.connect(pg_dsn, options=f"-c search_path={schema}")
        try:
            assert db.migrate(c) == []  # the fixture already applied everything
        except BaseException as exc:
            errors.append(exc)
        finally:
            c.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert errors == []


def test_a_run_skips_what_it_already_finished(cur: Any) -> None:
    """In ALL mode a retried range must not redo the gazettes its run already extracted."""
    done, other_run, todo = insert(cur, processed=True), insert(cur, processed=True), insert(cur)
    cur.execute("INSERT INTO qd_gazette_state (gazette_id, stage, state, run_id) VALUES"
                " (%s, 'extract', 'succeeded', 'run-a'), (%s, 'extract', 'succeeded', 'run-b')", (done, other_run))
    sql, params = selection.Selection(mode=selection.Mode.ALL).page_sql(low=0, high=2**31 - 1, before=None,
                                                                        limit=100, run_id="run-a")
    cur.execute(sql, params)
    assert [r[0] for r in cur.fetchall()] == [todo, other_run]
