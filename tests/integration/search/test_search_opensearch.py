"""The search package against a real OpenSearch 2.19 node: index creation, bulk writes, rejections, retries."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from opensearchpy import OpenSearch
from opensearchpy.serializer import JSONSerializer

from qd_extractor import logs
from qd_extractor.search import (
    BulkWriter,
    ItemResult,
    ensure_index,
    excerpt_index_body,
    gazette_document,
    gazette_index_body,
)
from qd_testkit import ListHandler

pytestmark = pytest.mark.integration


@pytest.fixture()
def names(client: OpenSearch) -> Iterator[list[str]]:
    """Unique index names for this test (append more as needed); all deleted afterwards."""
    created = [f"t-{uuid.uuid4().hex[:12]}"]
    yield created
    for name in created:
        client.indices.delete(index=name, ignore_unavailable=True)


@pytest.fixture()
def handler() -> ListHandler:
    return ListHandler()


def _writer(client: OpenSearch, *handlers: logging.Handler, **kw: Any) -> BulkWriter:
    logger = logging.getLogger(f"test.search.{uuid.uuid4().hex}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    for h in handlers:
        logger.addHandler(h)
    opts: dict[str, Any] = {"max_bytes": 1_000_000, "max_docs": 500, "max_retries": 3, "backoff_base_s": 0.01}
    opts.update(kw)
    return BulkWriter(client, logger=logger, **opts)


def _gazette(i: int) -> dict[str, Any]:
    row = {"id": 1000 + i, "source_text": "", "date": dt.date(2020, 10, 18) - dt.timedelta(days=i),
           "edition_number": str(i), "is_extra_edition": i % 2 == 0, "power": "executive",
           "file_checksum": f"{i:032x}", "file_path": f"1721000/2020-10-18/{i:040x}.pdf",
           "file_url": f"https://palmas.example/{i}.pdf", "scraped_at": dt.datetime(2020, 10, 18, 12, 34, 56, 123456),
           "created_at": dt.datetime(2020, 10, 19, 1, 2, 3), "territory_id": "1721000", "processed": False,
           "territory_name": "Palmas", "state_code": "TO"}
    return gazette_document(row, url=f"data.example/{row['file_path']}", file_raw_txt=f"data.example/{i}.txt",
                            text=f"Diário oficial {i}: abertura de licitação para a Secretaria de Educação. " * 5)


def test_ensure_index_creates_upstreams_gazette_index_once(client: OpenSearch, names: list[str]) -> None:
    name = names[0]
    assert ensure_index(client, name, gazette_index_body()) is True
    assert ensure_index(client, name, gazette_index_body()) is False
    mapping = client.indices.get_mapping(index=name)[name]["mappings"]["properties"]
    assert mapping == gazette_index_body()["mappings"]["properties"]  # every field and subfield as declared
    source_text = mapping["source_text"]
    assert source_text["fields"]["exact"] == {"type": "text", "analyzer": "exact", "index_options": "offsets",
                                              "term_vector": "with_positions_offsets"}
    assert source_text["fields"]["with_stopwords"]["analyzer"] == "brazilian_with_stopwords"
    assert "file_raw_txt" not in mapping
    index = client.indices.get_settings(index=name)[name]["settings"]["index"]
    assert index["sort"] == {"field": ["territory_id", "date"], "order": ["asc", "desc"]}
    assert index["analysis"] == {
        "filter": {"brazilian_stemmer": {"type": "stemmer", "language": "brazilian"}},
        "analyzer": {
            "brazilian_with_stopwords": {"filter": ["lowercase", "brazilian_stemmer"], "tokenizer": "standard"},
            "exact": {"filter": ["lowercase"], "tokenizer": "standard"}}}
    # The subfield keeps stop words and stems, which the theme queries rely on.
    tokens = client.indices.analyze(index=name, body={"field": "source_text.with_stopwords",
                                                      "text": "Licitações de educação"})["tokens"]
    assert [t["token"] for t in tokens] == ["licit", "de", "educ"]


def test_ensure_index_with_concurrent_creators(client: OpenSearch, names: list[str]) -> None:
    barrier = threading.Barrier(4)
    outcomes: list[bool | BaseException] = []

    def create() -> None:
        barrier.wait(timeout=30)
        try:
            outcomes.append(ensure_index(client, names[0], excerpt_index_body()))
        except BaseException as exc:  # recorded, asserted below
            outcomes.append(exc)

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes, key=str) == [False, False, False, True]
    mapping = client.indices.get_mapping(index=names[0])[names[0]]["mappings"]["properties"]
    assert mapping["excerpt_embedding_score"] == {"type": "rank_feature"}
    sort = client.indices.get_settings(index=names[0])[names[0]]["settings"]["index"]["sort"]
    assert sort == {"field": ["source_territory_id", "source_date"], "order": ["asc", "desc"]}


def test_bulk_in_several_requests_indexes_every_document(client: OpenSearch, names: list[str],
                                                         handler: ListHandler) -> None:
    ensure_index(client, names[0], gazette_index_body())
    docs = [_gazette(i) for i in range(25)]
    writer = _writer(client, handler, max_bytes=3000)
    results: list[ItemResult] = []
    for doc in docs:
        results += writer.add(names[0], doc["file_checksum"], doc)
        assert writer.pending_bytes <= 3000
    results += writer.flush()
    assert [r.doc_id for r in results] == [d["file_checksum"] for d in docs]
    assert all(r.ok and r.status == 201 for r in results)
    operations = handler.events(logs.OPENSEARCH_OPERATION)
    assert len(operations) > 3 and sum(getattr(e, "count", 0) for e in operations) == 25
    assert all(getattr(e, "bytes", 0) <= 3000 for e in operations)
    found = client.mget(index=names[0], body={"ids": [d["file_checksum"] for d in docs]})["docs"]
    assert [f["_id"] for f in found] == [d["file_checksum"] for d in docs] and all(f["found"] for f in found)
    # Stored _source is exactly what opensearch-py's default serializer makes of the document.
    assert found[3]["_source"] == json.loads(JSONSerializer().dumps(docs[3]))
    assert list(found[3]["_source"]) == list(docs[3])
    assert found[3]["_source"]["date"] == "2020-10-15"
    assert found[3]["_source"]["scraped_at"] == "2020-10-18T12:34:56.123456"


def test_rejected_document_fails_alone(client: OpenSearch, names: list[str], handler: ListHandler) -> None:
    ensure_index(client, names[0], gazette_index_body())
    writer = _writer(client, handler)
    good = [_gazette(i) for i in range(3)]
    bad = {**_gazette(9), "date": "not-a-date"}
    for doc in (good[0], bad, *good[1:]):
        assert writer.add(names[0], doc["file_checksum"], doc) == []
    results = writer.flush(refresh=True)
    assert len(handler.events(logs.OPENSEARCH_OPERATION)) == 1  # not retried: 400 is final
    assert [r.ok for r in results] == [True, False, True, True]
    failed = results[1]
    assert failed.doc_id == bad["file_checksum"] and failed.status == 400
    assert failed.error is not None and failed.error.startswith("mapper_parsing_exception")
    errors = handler.events(logs.OPENSEARCH_ERROR)
    assert len(errors) == 1 and getattr(errors[0], "document_id", None) == bad["file_checksum"]
    assert client.count(index=names[0])["count"] == 3


def test_partial_update_sets_only_given_fields(client: OpenSearch, names: list[str], handler: ListHandler) -> None:
    ensure_index(client, names[0], gazette_index_body())
    doc = _gazette(1)
    writer = _writer(client, handler)
    writer.add(names[0], "g1", doc)
    writer.flush()
    writer.partial_update(names[0], "g1", {"processed": True})
    writer.partial_update(names[0], "missing", {"processed": True})
    results = writer.flush()
    assert [(r.ok, r.status) for r in results] == [(True, 200), (False, 404)]  # update of a missing doc: final
    stored = client.get(index=names[0], id="g1")["_source"]
    assert stored == {**json.loads(JSONSerializer().dumps(doc)), "processed": True}


def test_excerpt_index_rank_feature_accepts_positive_only(client: OpenSearch, names: list[str],
                                                          handler: ListHandler) -> None:
    ensure_index(client, names[0], excerpt_index_body())
    writer = _writer(client, handler, refresh=True)  # excerpts: one refresh per batch
    base = {"excerpt": "x" * 250, "excerpt_subthemes": ["Agricultura e Pecuária"], "source_database_id": 42,
            "source_date": dt.date(2020, 10, 18), "source_territory_id": "1721000"}
    for doc_id, score in (("pos", 0.73), ("zero", 0.0), ("neg", -0.2)):
        writer.add(names[0], doc_id, {**base, "excerpt_id": doc_id, "excerpt_embedding_score": score})
    results = {r.doc_id: r for r in writer.flush()}
    assert results["pos"].ok
    for doc_id in ("zero", "neg"):
        assert not results[doc_id].ok and results[doc_id].status == 400
    # Visible to search right after the batch, without waiting for the periodic refresh.
    hits = client.search(index=names[0], body={"query": {"rank_feature": {"field": "excerpt_embedding_score"}}})
    assert [h["_id"] for h in hits["hits"]["hits"]] == ["pos"]
    # A later score written by partial update must be positive too.
    writer.partial_update(names[0], "pos", {"excerpt_embedding_score": 0.91})
    assert writer.flush()[0].ok
    assert client.get(index=names[0], id="pos")["_source"]["excerpt_embedding_score"] == 0.91


def _block(opensearch_url: str, name: str, on: bool) -> None:
    # read_only_allow_delete makes OpenSearch reject writes per item with a real 429 cluster_block_exception.
    requests.put(f"{opensearch_url}/{name}/_settings", timeout=30,
                 json={"index.blocks.read_only_allow_delete": True if on else None}).raise_for_status()


def test_items_refused_with_429_are_retried_alone(client: OpenSearch, names: list[str], handler: ListHandler,
                                                  opensearch_url: str) -> None:
    open_index, blocked = names[0], f"t-{uuid.uuid4().hex[:12]}"
    names.append(blocked)
    for name in (open_index, blocked):
        ensure_index(client, name, gazette_index_body())
    _block(opensearch_url, blocked, True)

    class Unblock(logging.Handler):
        """Lifts the block when the first request reports item errors, i.e. before the first retry."""

        def emit(self, record: logging.LogRecord) -> None:
            if getattr(record, "event_type", None) == logs.OPENSEARCH_OPERATION and getattr(record, "errors", 0):
                _block(opensearch_url, blocked, False)

    writer = _writer(client, handler, Unblock())
    docs = [_gazette(i) for i in range(6)]
    for i, doc in enumerate(docs):
        writer.add(blocked if i % 3 == 0 else open_index, doc["file_checksum"], doc)
    results = writer.flush(refresh=True)
    assert all(r.ok for r in results), results
    operations = handler.events(logs.OPENSEARCH_OPERATION)
    assert [getattr(e, "count", None) for e in operations] == [6, 2]  # only the two refused items re-sent
    assert getattr(operations[0], "errors", None) == 2
    assert client.count(index=blocked)["count"] == 2 and client.count(index=open_index)["count"] == 4


def test_items_still_refused_after_retries_are_reported_failed(client: OpenSearch, names: list[str],
                                                               handler: ListHandler, opensearch_url: str) -> None:
    ensure_index(client, names[0], gazette_index_body())
    _block(opensearch_url, names[0], True)
    try:
        writer = _writer(client, handler, max_retries=2)
        writer.add(names[0], "a", _gazette(1))
        results = writer.flush()
    finally:
        _block(opensearch_url, names[0], False)
    assert [(r.ok, r.status) for r in results] == [(False, 429)]
    assert results[0].error is not None and results[0].error.startswith("cluster_block_exception")
    assert len(handler.events(logs.OPENSEARCH_OPERATION)) == 3  # first try + max_retries
    assert len(handler.events(logs.OPENSEARCH_ERROR)) == 1
