"""Integration fixtures: an isolated schema per test, holding upstream's tables and ours.

Tests share one PostgreSQL database, but each gets its own schema (selected with search_path,
or PGOPTIONS for subprocesses), so rows never leak between tests and nothing is mocked.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from qd_core import db

UPSTREAM_SCHEMA = Path(__file__).resolve().parents[2] / "hack" / "sql" / "upstream_schema.sql"


@pytest.fixture()
def schema(pg_dsn: str) -> Iterator[str]:
    """A fresh schema with `territories`, `gazettes` and our migrated tables."""
    name = f"t_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(pg_dsn)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {name}")
    conn = psycopg2.connect(pg_dsn, options=f"-c search_path={name}")
    try:
        with conn, conn.cursor() as cur:
            cur.execute(UPSTREAM_SCHEMA.read_text())
        db.migrate(conn)
        yield name
    finally:
        conn.close()
        with admin.cursor() as cur:
            cur.execute(f"DROP SCHEMA {name} CASCADE")
        admin.close()


@pytest.fixture()
def conn(pg_dsn: str, schema: str) -> Iterator[Any]:
    """An autocommit connection whose search_path is the test's schema."""
    c = psycopg2.connect(pg_dsn, options=f"-c search_path={schema}")
    c.autocommit = True
    try:
        yield c
    finally:
        c.close()
