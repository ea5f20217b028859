"""BulkWriter against a real OpenSearch node: requests in flight, and a document too heavy for the timeout.

The timeout is real: a request timeout of 0.25 s against a 4 MB gazette text, which the node needs
well over half a second to analyse (three term-vector fields), while a 1 KB document takes ~20 ms.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from opensearchpy import OpenSearch

from qd_extractor import logs
from qd_extractor.search import BulkWriter, ensure_index, gazette_index_body
from qd_testkit import ListHandler

pytestmark = pytest.mark.integration


@pytest.fixture()
def index(client: OpenSearch) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:12]}"
    ensure_index(client, name, gazette_index_body())
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)


def _writer(client: OpenSearch, handler: logging.Handler, **kw: Any) -> BulkWriter:
    logger = logging.getLogger(f"test.inflight.{uuid.uuid4().hex}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(handler)
    opts: dict[str, Any] = {"max_bytes": 1_000_000, "max_docs": 500, "max_retries": 3, "backoff_base_s": 0.01}
    opts.update(kw)
    return BulkWriter(client, logger=logger, **opts)


def _text(size: int, seed: int) -> str:
    from qd_devtools.text import line_pool

    rng = random.Random(seed)
    pool = line_pool(seed, width=100, size=2000)
    return "\n".join(rng.choice(pool) for _ in range(size // 100))


def test_requests_in_flight_index_everything_once(client: OpenSearch, index: str) -> None:
    handler = ListHandler()
    writer = _writer(client, handler, max_bytes=60_000, concurrency=3)
    ids = [f"{i:032x}" for i in range(60)]
    results = []
    for i, doc_id in enumerate(ids):
        results += writer.add(index, doc_id, {"source_text": _text(2000, i), "territory_id": "1721000"})
        assert writer.pending_bytes + writer.inflight_bytes <= 60_000
    results += writer.flush(refresh=True)
    assert sorted(r.doc_id for r in results) == ids and all(r.ok for r in results)
    assert len(handler.events(logs.OPENSEARCH_OPERATION)) >= 6  # several requests of <= 20 KB each
    assert client.count(index=index)["count"] == 60  # the last request refreshed after all others finished


def test_document_too_heavy_for_the_timeout_fails_alone(client: OpenSearch, index: str) -> None:
    handler = ListHandler()
    writer = _writer(client, handler, max_bytes=20_000_000, timeout_s=0.25, drain_max_s=60)
    small = {"source_text": _text(1000, 1), "territory_id": "1721000"}
    heavy = {"source_text": _text(4_000_000, 2), "territory_id": "1721000"}
    writer.add(index, "a", small)
    writer.add(index, "heavy", heavy)
    writer.add(index, "b", small)
    results = writer.flush()
    # 200, not 201: the timed-out request had stored "a" and "b" before they were sent again.
    assert [(r.doc_id, r.ok, r.status) for r in results] == [("a", True, 200), ("heavy", False, 408),
                                                             ("b", True, 200)]
    assert results[1].error is not None and "timed out twice on its own" in results[1].error
    operations = handler.events(logs.OPENSEARCH_OPERATION)
    # The batch timed out, was split around the heavy document, which timed out twice alone.
    assert [(getattr(e, "count", 0), getattr(e, "timed_out", False)) for e in operations] == [
        (3, True), (1, False), (1, True), (1, True), (1, False)]
    timeouts = [e for e in handler.events(logs.OPENSEARCH_ERROR) if getattr(e, "error_type", "") == "ConnectionTimeout"]
    # Each timed-out request had finished on the node before anything was sent again.
    assert [getattr(e, "task_finished", None) for e in timeouts] == [True, True, True]
    found = client.mget(index=index, body={"ids": ["a", "b"]})["docs"]
    assert all(f["found"] for f in found)
