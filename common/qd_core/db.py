"""PostgreSQL settings, connections and our versioned migrations.

Migrations are the numbered `migrations/NNNN_name.sql` files, applied in order inside one
transaction under an advisory lock, so the operator and many Job pods can all call `migrate()` at
start-up safely. They only ever create tables of our own (prefix `qd_`).
"""

from __future__ import annotations

import dataclasses
import importlib.resources
from collections.abc import Mapping
from typing import Any

import psycopg2
import psycopg2.extensions
import tenacity

from qd_core import config

#: Arbitrary, fixed key for pg_advisory_xact_lock: serialises concurrent migrators.
_MIGRATION_LOCK = 0x71645F6D69677261


@dataclasses.dataclass(frozen=True)
class DatabaseSettings:
    """Connection settings, from upstream's variable names."""

    host: str
    port: int
    dbname: str
    user: str
    password: str
    #: Seconds to wait for a connection before failing (libpq connect_timeout).
    connect_timeout: int = 10
    #: libpq `options`, e.g. "-c search_path=x" (tests isolate schemas this way; PGOPTIONS also works).
    options: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DatabaseSettings:
        """Read POSTGRES_HOST/PORT/DB/USER/PASSWORD; all are required, as upstream."""
        return cls(
            host=config.env_str("POSTGRES_HOST", env=env),
            port=config.env_int("POSTGRES_PORT", 5432, minimum=1, maximum=65535, env=env),
            dbname=config.env_str("POSTGRES_DB", env=env),
            user=config.env_str("POSTGRES_USER", env=env),
            password=config.env_str("POSTGRES_PASSWORD", env=env),
        )

    def connect(self, application_name: str = "qd") -> psycopg2.extensions.connection:
        """Open a connection (not autocommit)."""
        extra: dict[str, Any] = {"options": self.options} if self.options else {}
        conn: psycopg2.extensions.connection = psycopg2.connect(
            host=self.host, port=self.port, dbname=self.dbname, user=self.user, password=self.password,
            connect_timeout=self.connect_timeout, application_name=application_name, **extra)
        return conn

    def connect_with_retries(self, application_name: str = "qd", *,
                             attempts: int = 6) -> psycopg2.extensions.connection:
        """Connect, retrying with exponential backoff and jitter (1 s up to 20 s): it may be restarting.

        Errors after connecting are not retried here: they end the range (exit 3) with the claimed
        gazettes released, and the Job's retry resumes from what is recorded.
        """
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(psycopg2.OperationalError),
            stop=tenacity.stop_after_attempt(attempts), wait=tenacity.wait_exponential_jitter(initial=1, max=20),
            reraise=True)
        conn: psycopg2.extensions.connection = retrying(self.connect, application_name)
        return conn


def _migrations() -> list[tuple[str, str]]:
    folder = importlib.resources.files("qd_core") / "migrations"
    files = sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)
    return [(f.name.removesuffix(".sql"), f.read_text(encoding="utf-8")) for f in files]


def migrate(conn: psycopg2.extensions.connection) -> list[str]:
    """Apply the migrations this database lacks; return the versions applied now."""
    applied_now: list[str] = []
    with conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        cur.execute("CREATE TABLE IF NOT EXISTS qd_schema_migrations ("
                    " version TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())")
        cur.execute("SELECT version FROM qd_schema_migrations")
        done = {row[0] for row in cur.fetchall()}
        for version, sql in _migrations():
            if version in done:
                continue
            cur.execute(sql)
            cur.execute("INSERT INTO qd_schema_migrations (version) VALUES (%s)", (version,))
            applied_now.append(version)
    return applied_now


def fetch_all(conn: psycopg2.extensions.connection, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    """Run a read query in its own short transaction."""
    with conn, conn.cursor() as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())
