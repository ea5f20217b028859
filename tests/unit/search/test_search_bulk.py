"""BulkWriter batching math: where request boundaries fall, and what each request body holds.

The fake connection below exists ONLY to count request boundaries and read back the bodies the real
opensearch-py client sends; it answers every action with a plain success. Item rejections, retries
and refreshes against a real node are covered in tests/integration/search.
"""

from __future__ import annotations

import json
import logging
import socket
import uuid
from collections.abc import Collection, Mapping
from typing import Any

import pytest
from opensearchpy import OpenSearch
from opensearchpy.connection import Connection

from qd_extractor import logs
from qd_extractor.search import BulkWriter, SearchUnavailableError
from qd_testkit import ListHandler

REQUESTS: list[tuple[dict[str, Any], bytes]] = []


class CountingConnection(Connection):
    """Records each request; answers each bulk action with 200/201 (counting only, see module docstring)."""

    def perform_request(self, method: str, url: str, params: Mapping[str, Any] | None = None, body: Any = None,
                        timeout: float | None = None, ignore: Collection[int] = (),
                        headers: Mapping[str, str] | None = None) -> Any:
        if isinstance(body, list):  # the writer streams the queued parts; urllib3 sends them back to back
            body = b"".join(body)
        REQUESTS.append((dict(params or {}), body))
        lines = [json.loads(line) for line in body.splitlines()]
        items = [{op: {"_id": meta["_id"], "status": 201 if op == "index" else 200}}
                 for action in lines[::2] for op, meta in action.items()]
        return 200, {"content-type": "application/json"}, json.dumps({"errors": False, "items": items})


@pytest.fixture()
def client() -> OpenSearch:
    REQUESTS.clear()
    return OpenSearch(hosts=["http://fake:9200"], connection_class=CountingConnection)


@pytest.fixture()
def handler() -> ListHandler:
    return ListHandler()


def _writer(client: OpenSearch, handler: logging.Handler | None = None, **kw: Any) -> BulkWriter:
    logger = logging.getLogger(f"test.bulk.{uuid.uuid4().hex}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    if handler:
        logger.addHandler(handler)
    opts: dict[str, Any] = {"max_bytes": 10_000, "max_docs": 1000, "max_retries": 2, "backoff_base_s": 0.0}
    opts.update(kw)
    return BulkWriter(client, logger=logger, **opts)


def _action_size(index: str, doc_id: str, source: dict[str, Any]) -> int:
    header = json.dumps({"index": {"_index": index, "_id": doc_id}}, separators=(",", ":"), ensure_ascii=False)
    return len(header.encode()) + len(json.dumps(source, separators=(",", ":"), ensure_ascii=False).encode()) + 2


def _counts() -> list[int]:
    return [body.count(b"\n") // 2 for _, body in REQUESTS]


def test_byte_limit_sets_request_boundaries(client: OpenSearch) -> None:
    source = {"source_text": "x" * 50}
    size = _action_size("idx", "d00", source)
    writer = _writer(client, max_bytes=3 * size)
    results = []
    for i in range(10):
        results += writer.add("idx", f"d{i:02}", source)
        assert writer.pending_bytes <= 3 * size
    results += writer.flush()
    assert _counts() == [3, 3, 3, 1]
    assert all(len(body) <= 3 * size for _, body in REQUESTS)
    assert [r.doc_id for r in results] == [f"d{i:02}" for i in range(10)]  # one result per action, in order
    assert all(r.ok and r.status == 201 and r.index == "idx" for r in results)


def test_next_action_that_would_exceed_goes_to_the_next_request(client: OpenSearch) -> None:
    size = _action_size("idx", "a", {"t": "y"})
    writer = _writer(client, max_bytes=2 * size + 1)
    for doc_id in "abcde":
        writer.add("idx", doc_id, {"t": "y"})
    writer.flush()
    assert _counts() == [2, 2, 1]


def test_doc_count_limit(client: OpenSearch) -> None:
    writer = _writer(client, max_docs=4)
    auto = []
    for i in range(10):
        auto += writer.add("idx", str(i), {"n": i})
    assert _counts() == [4, 4]  # sent as soon as the batch is full
    assert len(auto) == 8 and writer.pending_count == 2
    assert len(writer.flush()) == 2
    assert _counts() == [4, 4, 2]


def test_oversized_action_is_sent_alone(client: OpenSearch) -> None:
    writer = _writer(client, max_bytes=200)
    writer.add("idx", "small1", {"t": "a"})
    big = writer.add("idx", "big", {"t": "b" * 1000})
    assert [r.doc_id for r in big] == ["small1", "big"]  # pending flushed first, then the big one alone
    writer.add("idx", "small2", {"t": "c"})
    writer.flush()
    assert _counts() == [1, 1, 1]
    assert b'"big"' in REQUESTS[1][1] and writer.pending_bytes == 0


def test_empty_flush_sends_nothing(client: OpenSearch) -> None:
    assert _writer(client).flush() == []
    assert REQUESTS == []


def test_refresh_per_flush(client: OpenSearch) -> None:
    writer = _writer(client)
    writer.add("idx", "a", {})
    writer.flush()
    writer.add("idx", "b", {})
    writer.flush(refresh=True)
    refreshing = _writer(client, refresh=True)
    refreshing.add("ex", "c", {})
    refreshing.flush()
    assert [p["refresh"] for p, _ in REQUESTS] == ["false", "true", "true"]


def test_body_is_ndjson_index_and_update_actions(client: OpenSearch) -> None:
    writer = _writer(client)
    writer.add("gaz", "id1", {"source_text": "Licitação nº 1"})
    writer.partial_update("ambiental", "ex1", {"excerpt_embedding_score": 0.5})
    writer.flush()
    body = REQUESTS[0][1]
    assert isinstance(body, bytes) and body.endswith(b"\n")
    assert body.decode().splitlines() == [
        '{"index":{"_index":"gaz","_id":"id1"}}',
        '{"source_text":"Licitação nº 1"}',  # UTF-8, not \u escapes, as opensearch-py serialises
        '{"update":{"_index":"ambiental","_id":"ex1"}}',
        '{"doc":{"excerpt_embedding_score":0.5}}',
    ]


def test_one_operation_event_per_request(client: OpenSearch, handler: ListHandler) -> None:
    writer = _writer(client, handler, max_docs=2)
    for i in range(5):
        writer.add("idx", str(i), {"n": i})
    writer.flush()
    events = [r for r in handler.records if getattr(r, "event_type", None) == logs.OPENSEARCH_OPERATION]
    assert [getattr(e, "count", None) for e in events] == [2, 2, 1]
    assert [getattr(e, "bytes", None) for e in events] == [len(b) for _, b in REQUESTS]
    assert all(isinstance(getattr(e, "duration_ms", None), float) for e in events)


def test_invalid_limits_are_refused(client: OpenSearch) -> None:
    with pytest.raises(ValueError):
        _writer(client, max_bytes=0)
    with pytest.raises(ValueError):
        _writer(client, max_docs=0)


def test_unreachable_node_raises_after_retries(handler: ListHandler) -> None:
    # A real refused connection (no fake): a port we just bound and released.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = OpenSearch(hosts=[f"http://127.0.0.1:{port}"], max_retries=0, timeout=2)
    writer = _writer(client, handler, max_retries=2)
    writer.add("idx", "a", {"n": 1})
    writer.add("idx", "b", {"n": 2})
    with pytest.raises(SearchUnavailableError) as err:
        writer.flush()
    assert err.value.pending == [("idx", "a"), ("idx", "b")]
    assert err.value.written == []
    assert writer.pending_count == 0
    errors = [r for r in handler.records if getattr(r, "event_type", None) == logs.OPENSEARCH_ERROR]
    assert len(errors) == 1 and getattr(errors[0], "error_type", None) == "ConnectionError"
