"""Session fixtures shared by every tier.

Service endpoints come from the upstream environment variable names (POSTGRES_*, STORAGE_*,
APACHE_TIKA_SERVER, OPENSEARCH_*), which `hack/services.sh env` prints and the test command
exports. A missing variable fails the test with its name: tiers are never skipped silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest


def require_env(name: str) -> str:
    """Return the variable or fail naming it (integration tiers must not skip)."""
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"environment variable {name} is not set: run the tests through hack/test.sh "
                    f"or `eval \"$(hack/services.sh env)\"` first", pytrace=False)
    return value


@pytest.fixture(scope="session")
def pg_dsn() -> str:
    return (f"host={require_env('POSTGRES_HOST')} port={require_env('POSTGRES_PORT')} "
            f"dbname={require_env('POSTGRES_DB')} user={require_env('POSTGRES_USER')} "
            f"password={require_env('POSTGRES_PASSWORD')}")


@pytest.fixture()
def pg_conn(pg_dsn: str) -> Iterator[Any]:
    import psycopg2

    conn = psycopg2.connect(pg_dsn)
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


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
