"""The database holds upstream's tables: upstream-style rows go in, duplicates are refused."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import psycopg2
import pytest

pytestmark = pytest.mark.integration

INSERT = """
INSERT INTO gazettes (source_text, date, edition_number, is_extra_edition, power, file_checksum,
  file_path, file_url, scraped_at, created_at, territory_id, processed)
VALUES ('', %(date)s, '1', FALSE, 'executive', %(checksum)s, %(path)s, 'https://example.invalid/d.pdf',
  %(scraped)s, NOW(), '2704302', FALSE)
ON CONFLICT (territory_id, date, file_checksum) DO NOTHING RETURNING id
"""


@pytest.fixture()
def maceio(pg_conn: Any) -> None:
    with pg_conn.cursor() as cur:
        cur.execute("INSERT INTO territories (id, name, state_code, state) VALUES "
                    "('2704302', 'Maceió', 'AL', 'Alagoas') ON CONFLICT (id) DO NOTHING")


def _row(checksum: str) -> dict[str, Any]:
    return {"date": dt.date(2024, 5, 2), "checksum": checksum, "path": f"2704302/2024-05-02/{checksum}.pdf",
            "scraped": dt.datetime(2024, 5, 2, 12, 0, 0)}


def test_upstream_style_insert_returns_id(pg_conn: Any, maceio: None) -> None:
    with pg_conn.cursor() as cur:
        cur.execute(INSERT, _row(uuid.uuid4().hex))
        (gazette_id,) = cur.fetchone()
        cur.execute("SELECT processed, territory_id FROM gazettes WHERE id = %s", (gazette_id,))
        assert cur.fetchone() == (False, "2704302")


def test_duplicate_territory_date_checksum_is_rejected(pg_conn: Any, maceio: None) -> None:
    checksum = uuid.uuid4().hex
    with pg_conn.cursor() as cur:
        cur.execute(INSERT, _row(checksum))
        assert cur.fetchone() is not None
        # Upstream's insert skips the duplicate silently ...
        cur.execute(INSERT, _row(checksum))
        assert cur.fetchone() is None
        # ... because the unique constraint refuses it.
        with pytest.raises(psycopg2.errors.UniqueViolation):
            cur.execute(INSERT.split("ON CONFLICT", maxsplit=1)[0], _row(checksum))


def test_territories_columns_in_upstream_order(pg_conn: Any) -> None:
    """Upstream maps `SELECT * FROM territories` by position: id, name, state_code, state."""
    with pg_conn.cursor() as cur:
        cur.execute("SELECT * FROM territories LIMIT 0")
        assert [d.name for d in cur.description] == ["id", "name", "state_code", "state"]
