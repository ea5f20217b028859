"""Helpers every test tier shares: polling with a timeout, required environment, the cluster client.

Importable as `qd_testkit` from any tier: tests/ holds no `__init__.py`, so pytest (import mode
`prepend`) puts tests/ on sys.path when it loads tests/conftest.py, which every run under tests/
loads first (the configuration lives in pyproject.toml, next to tests/).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")


def require_env(name: str, hint: str) -> str:
    """Return the variable, or fail the test naming it and saying how to set it (tiers never skip)."""
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"environment variable {name} is not set: {hint}", pytrace=False)
    return value


def wait_for(predicate: Callable[[], T | None], timeout: float, what: str, interval: float = 0.2) -> T:
    """Poll `predicate` until it returns a truthy value (which is returned) or fail after
    `timeout` seconds naming `what`. Exceptions from the predicate count as "not yet" and the
    last one is reported on timeout (pytest.fail inside the predicate still fails at once)."""
    deadline = time.monotonic() + timeout
    last_error: BaseException | None = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except Exception as exc:  # reported on timeout
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}{detail}", pytrace=False)
        time.sleep(interval)


def require_kubeconfig(up: str) -> str:
    """KUBECONFIG, which must name an existing file; `up` is the command that brings the cluster up."""
    path = require_env("KUBECONFIG", f"bring a cluster up with `{up}` first")
    if not Path(path).is_file():
        pytest.fail(f"KUBECONFIG={path} does not exist: run `{up}` first", pytrace=False)
    return path


def api_client(kubeconfig: str) -> Any:
    """An ApiClient for the current context of `kubeconfig`; fails the test when the API server does
    not answer. The caller closes it."""
    from kubernetes import client, config

    api = config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    try:
        client.VersionApi(api).get_code()
    except Exception as exc:  # turned into a clear failure
        api.close()
        pytest.fail(f"the API server in KUBECONFIG={kubeconfig} does not answer: {exc}", pytrace=False)
    return api


def seed_gazettes(conn: Any, count: int, territory: str = "2704302") -> list[int]:
    """Insert `count` unprocessed gazettes of one territory (loading the territories first) into the
    connection's schema, one a day from 2024-01-01; return their ids."""
    import datetime as dt

    from qd_devtools import territories

    territories.load_territories(conn)
    ids: list[int] = []
    with conn.cursor() as cur:
        for i in range(count):
            cur.execute(
                "INSERT INTO gazettes (source_text, date, edition_number, is_extra_edition, power, file_checksum,"
                " file_path, file_url, scraped_at, created_at, territory_id, processed) VALUES ('', %s, '1', FALSE,"
                " 'executive', md5(%s), %s, 'https://x.invalid', now(), now(), %s, FALSE) RETURNING id",
                (dt.date(2024, 1, 1) + dt.timedelta(days=i), f"g{i}", f"{territory}/2024/g{i}.pdf", territory))
            ids.append(cur.fetchone()[0])
    return ids


class ListHandler(logging.Handler):
    """Keeps every log record, so a test can assert on the JSON log events a component emitted."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def events(self, event_type: str) -> list[logging.LogRecord]:
        """The records of one event (the `event_type` field of our JSON log lines)."""
        return [r for r in self.records if getattr(r, "event_type", None) == event_type]
