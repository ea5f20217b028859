"""A bounded pool of PostgreSQL connections shared by every run's daemon.

One connection per run, held for the run's lifetime, would grow with the number of ExtractionRuns
kept in the cluster (finished ones included) and exhaust the server's `max_connections`, which the
Job pods share. Daemons borrow a connection for one reconcile pass instead.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

import psycopg2
import psycopg2.extensions

Connection = psycopg2.extensions.connection


class PoolTimeout(Exception):
    """Every connection stayed busy for the whole wait (the pass is retried at the next tick)."""


class ConnectionPool:
    """At most `size` open connections; `borrow` waits for a free one."""

    def __init__(self, connect: Callable[[], Connection], size: int) -> None:
        if size < 1:
            raise ValueError("size must be >= 1")
        self._connect = connect
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[Connection] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def borrow(self, timeout_s: float) -> Iterator[Connection]:
        """A connection for one pass; one that raised a database error is closed, never handed out again."""
        if not self._slots.acquire(timeout=timeout_s):
            raise PoolTimeout(f"no database connection free within {timeout_s:.0f} s")
        conn: Connection | None = None
        try:
            with self._lock:
                while self._idle and conn is None:
                    candidate = self._idle.pop()
                    conn = None if candidate.closed else candidate
            if conn is None:
                conn = self._connect()
            yield conn
        except psycopg2.Error:
            if conn is not None:
                conn.close()
            raise
        finally:
            if conn is not None and not conn.closed:
                with self._lock:
                    self._idle.append(conn)
            self._slots.release()

    def close(self) -> None:
        """Close the idle connections (at shutdown)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
