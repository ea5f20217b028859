"""BulkWriter with requests in flight, and what a timed-out request leads to.

The fake connection answers every action with success (like test_search_bulk.py) and lets a test
hold requests at a barrier, to prove two really run at once. The timeout test uses a real socket
server that accepts and never answers; behaviour against a real slow node is in tests/integration.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import uuid
from collections.abc import Collection, Iterator, Mapping
from typing import Any

import pytest
from opensearchpy import OpenSearch
from opensearchpy.connection import Connection

from qd_extractor import logs
from qd_extractor.search import BulkWriter, SearchUnavailableError
from qd_extractor.search.sender import split_at_byte_midpoint

SEEN: list[list[str]] = []  # _ids of each request, in the order requests started
VALUES: list[int] = []  # the "n" of every action, in the order requests started
ACTIVE = {"now": 0, "max": 0}
LOCK = threading.Lock()
GATE: list[threading.Barrier] = []  # when set, each request waits here until another one arrives


class SlowConnection(Connection):
    """Counts requests running at once; answers each bulk action with 200/201."""

    def perform_request(self, method: str, url: str, params: Mapping[str, Any] | None = None, body: Any = None,
                        timeout: float | None = None, ignore: Collection[int] = (),
                        headers: Mapping[str, str] | None = None) -> Any:
        data = b"".join(body) if isinstance(body, list) else body
        lines = [json.loads(line) for line in data.splitlines()]
        with LOCK:
            SEEN.append([meta["_id"] for action in lines[::2] for meta in action.values()])
            VALUES.extend(int(src.get("doc", src).get("n", -1)) for src in lines[1::2])
            ACTIVE["now"] += 1
            ACTIVE["max"] = max(ACTIVE["max"], ACTIVE["now"])
        try:
            if GATE:
                GATE[0].wait(timeout=30)
            items = [{op: {"_id": meta["_id"], "status": 201 if op == "index" else 200}}
                     for action in lines[::2] for op, meta in action.items()]
            return 200, {"content-type": "application/json"}, json.dumps({"errors": False, "items": items})
        finally:
            with LOCK:
                ACTIVE["now"] -= 1


@pytest.fixture()
def client() -> Iterator[OpenSearch]:
    SEEN.clear()
    VALUES.clear()
    GATE.clear()
    ACTIVE.update(now=0, max=0)
    yield OpenSearch(hosts=["http://fake:9200"], connection_class=SlowConnection)
    GATE.clear()


def _logger(handler: logging.Handler | None = None) -> logging.Logger:
    logger = logging.getLogger(f"test.inflight.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    if handler:
        logger.addHandler(handler)
    return logger


def _writer(client: OpenSearch, **kw: Any) -> BulkWriter:
    opts: dict[str, Any] = {"max_bytes": 10_000, "max_docs": 1000, "max_retries": 2, "backoff_base_s": 0.0}
    opts.update(kw)
    return BulkWriter(client, logger=_logger(), **opts)


def test_split_isolates_the_item_at_the_byte_midpoint() -> None:
    assert split_at_byte_midpoint([10, 10, 10, 10]) == [[0], [1], [2, 3]]
    assert split_at_byte_midpoint([1, 1, 100, 1]) == [[0, 1], [2], [3]]  # the oversized one alone
    assert split_at_byte_midpoint([100, 1, 1]) == [[0], [1, 2]]
    assert split_at_byte_midpoint([1, 1, 1, 100]) == [[0, 1, 2], [3]]
    assert split_at_byte_midpoint([5, 5]) == [[0], [1]]


def test_two_requests_really_run_at_once(client: OpenSearch) -> None:
    GATE.append(threading.Barrier(2))  # neither request can answer until the other has started
    writer = _writer(client, max_docs=3, concurrency=2)
    results = []
    for i in range(6):
        results += writer.add("idx", f"d{i}", {"n": i})
    results += writer.flush()
    assert ACTIVE["max"] == 2
    # Two batches of three; with both in flight at once, either may reach the server first.
    assert sorted(SEEN) == [["d0", "d1", "d2"], ["d3", "d4", "d5"]]
    assert sorted(r.doc_id for r in results) == [f"d{i}" for i in range(6)] and all(r.ok for r in results)


def test_pending_plus_inflight_stay_within_max_bytes(client: OpenSearch) -> None:
    writer = _writer(client, max_bytes=3000, concurrency=3)
    results = []
    for i in range(60):
        results += writer.add("idx", f"d{i:02}", {"t": "x" * 80})
        assert writer.pending_bytes + writer.inflight_bytes <= 3000
        assert writer.pending_bytes <= 1000  # each request holds max_bytes / concurrency
    results += writer.flush()
    assert sorted(r.doc_id for r in results) == [f"d{i:02}" for i in range(60)]
    assert len(SEEN) >= 9 and writer.inflight_bytes == 0


def test_writes_to_one_document_never_overtake_each_other(client: OpenSearch) -> None:
    writer = _writer(client, max_docs=1, concurrency=3)
    writer.add("idx", "a", {"n": 1})
    writer.partial_update("idx", "a", {"n": 2})  # must wait for the index of "a"
    writer.add("idx", "b", {"n": 3})
    writer.partial_update("idx", "a", {"n": 4})
    writer.flush()
    assert sorted(SEEN) == [["a"], ["a"], ["a"], ["b"]]
    assert [n for n in VALUES if n != 3] == [1, 2, 4]  # the writes of "a" start in the order they were added
    assert ACTIVE["max"] <= 2  # "b" may overlap an update of "a"; two writes of "a" never overlap


def test_concurrency_must_be_positive(client: OpenSearch) -> None:
    with pytest.raises(ValueError):
        _writer(client, concurrency=0)


class SilentServer:
    """Accepts connections and reads requests but never answers (a node stuck in a long GC or OOM)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.port = self.sock.getsockname()[1]
        self.request_lines: list[str] = []
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        buf = b""
        while True:
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            *lines, buf = (buf + chunk).split(b"\r\n")
            self.request_lines += [ln.decode() for ln in lines if ln.startswith((b"POST ", b"GET "))]

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


def test_timed_out_request_is_not_resent_to_a_node_that_stopped_answering() -> None:
    server = SilentServer()
    handler = logging.Handler()
    records: list[logging.LogRecord] = []
    handler.emit = records.append  # type: ignore[method-assign]
    try:
        client = OpenSearch(hosts=[f"http://127.0.0.1:{server.port}"], timeout=0.3, max_retries=3,
                            retry_on_timeout=True)
        writer = BulkWriter(client, logger=_logger(handler), max_bytes=100_000, max_docs=100, max_retries=5,
                            backoff_base_s=0.0)
        writer.add("idx", "a", {"n": 1})
        writer.add("idx", "b", {"n": 2})
        with pytest.raises(SearchUnavailableError) as err:
            writer.flush()
    finally:
        server.close()
    assert err.value.pending == [("idx", "a"), ("idx", "b")] and err.value.written == []
    # One bulk request, then a look at the tasks API; never a second copy of the body.
    assert [line.split("?")[0] for line in server.request_lines] == ["POST /_bulk", "GET /_tasks"]
    operations = [r for r in records if getattr(r, "event_type", None) == logs.OPENSEARCH_OPERATION]
    assert [getattr(r, "timed_out", None) for r in operations] == [True]


def _extractor_env(**extra: str) -> dict[str, str]:
    env = {"OPENSEARCH_HOST": "http://os:9200", "OPENSEARCH_INDEX": "querido-diario", "POSTGRES_HOST": "db",
           "POSTGRES_DB": "qd", "POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p", "STORAGE_BUCKET": "b",
           "APACHE_TIKA_SERVER": "http://tika:9998", "QUERIDO_DIARIO_FILES_ENDPOINT": "https://files",
           "MEMORY_LIMIT_BYTES": str(256 * 1024**2)}
    env.update(extra)
    return env


def test_bulk_concurrency_setting() -> None:
    from qd_core.config import ConfigError
    from qd_extractor.settings import ExtractorSettings

    assert ExtractorSettings.from_env(_extractor_env()).bulk_concurrency == 2
    assert ExtractorSettings.from_env(_extractor_env(QD_BULK_CONCURRENCY="1")).bulk_concurrency == 1
    for bad in ("0", "9", "two"):
        with pytest.raises(ConfigError, match="QD_BULK_CONCURRENCY"):
            ExtractorSettings.from_env(_extractor_env(QD_BULK_CONCURRENCY=bad))
