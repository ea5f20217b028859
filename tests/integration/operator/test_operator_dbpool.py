"""The daemons' shared connection pool, against the real PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import psycopg2
import pytest

from qd_core import db
from qd_operator.dbpool import ConnectionPool, PoolTimeout

pytestmark = pytest.mark.integration


@pytest.fixture()
def app_name() -> str:
    return f"qd-pool-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture()
def pool(app_name: str) -> Any:
    settings = db.DatabaseSettings.from_env()
    made = ConnectionPool(lambda: settings.connect(app_name), size=2)
    yield made
    made.close()


def open_connections(conn: Any, app_name: str) -> int:
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (app_name,))
        return int(cur.fetchone()[0])


def test_many_daemons_share_at_most_size_connections(pool: ConnectionPool, conn: Any, app_name: str) -> None:
    inside, peak, lock = 0, 0, threading.Lock()
    both_in = threading.Barrier(2, timeout=30)
    errors: list[BaseException] = []

    def daemon() -> None:
        nonlocal inside, peak
        try:
            for _ in range(3):
                with pool.borrow(timeout_s=30) as c:
                    with lock:
                        inside += 1
                        peak = max(peak, inside)
                    with c, c.cursor() as cur:
                        cur.execute("SELECT pg_sleep(0.05)")
                    with lock:
                        inside -= 1
        except BaseException as err:
            errors.append(err)

    def holder() -> None:
        with pool.borrow(timeout_s=30):
            both_in.wait()  # two borrowers inside at once: the pool's size

    pair = [threading.Thread(target=holder) for _ in range(2)]
    for t in pair:
        t.start()
    for t in pair:
        t.join(30)
    threads = [threading.Thread(target=daemon) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and not any(t.is_alive() for t in threads)
    assert peak <= 2
    assert open_connections(conn, app_name) == 2  # kept open for the next passes, never more


def test_a_full_pool_times_out_instead_of_opening_more(pool: ConnectionPool) -> None:
    with pool.borrow(timeout_s=5), pool.borrow(timeout_s=5), \
            pytest.raises(PoolTimeout, match="no database connection free"), pool.borrow(timeout_s=0.2):
        pass


def test_a_broken_connection_is_dropped_not_handed_out_again(pool: ConnectionPool, conn: Any,
                                                             app_name: str) -> None:
    with pool.borrow(timeout_s=5) as first:
        pid = first.get_backend_pid()
    with conn.cursor() as cur:  # the server ends that session, as a restart or failover would
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    with pytest.raises(psycopg2.Error), pool.borrow(timeout_s=5) as same:
        assert same.get_backend_pid() == pid
        with same, same.cursor() as cur:
            cur.execute("SELECT 1")
    with pool.borrow(timeout_s=5) as fresh, fresh, fresh.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        assert cur.fetchone()[0] != pid
