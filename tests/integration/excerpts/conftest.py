"""Fixtures for the excerpts stage against real OpenSearch and PostgreSQL.

`upstream` replays upstream's own algorithm (okfn-brasil/querido-diario-data-processing, §7–§8 of
upstream-pipeline.md) on the same data into separate indexes: full `_source`, `_analyze` per term
per batch, one `refresh=True` index request per excerpt write, excerpts encoded one at a time. The
tests compare its output and its requests with the stage's.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch

from qd_extractor.excerpts.themes import Theme
from qd_extractor.search import SearchSettings, excerpt_index_body, make_client


@pytest.fixture()
def client(opensearch_url: str) -> OpenSearch:
    return make_client(SearchSettings(host=opensearch_url, index="unused", user=os.environ.get("OPENSEARCH_USER"),
                                      password=os.environ.get("OPENSEARCH_PASSWORD")))


@pytest.fixture()
def names(client: OpenSearch) -> Iterator[Callable[[str], str]]:
    """`names("kind")` → a unique index name, deleted after the test."""
    made: list[str] = []

    def make(kind: str) -> str:
        made.append(f"t-{kind}-{uuid.uuid4().hex[:10]}")
        return made[-1]

    yield make
    for name in made:
        client.indices.delete(index=name, ignore_unavailable=True)


@dataclasses.dataclass
class Request:
    method: str
    path: str
    params: dict[str, Any]
    sent: int
    received: int
    response: Any


class Recorder:
    """Wraps a client's transport and records every request with its body and response sizes."""

    def __init__(self, client: OpenSearch) -> None:
        self.requests: list[Request] = []
        self._real = client.transport.perform_request
        client.transport.perform_request = self._perform  # type: ignore[method-assign,assignment]

    def _perform(self, method: str, url: str, params: Any = None, body: Any = None, **kw: Any) -> Any:
        response = self._real(method, url, params=params, body=body, **kw)
        sent = len(body) if isinstance(body, str | bytes) else len(json.dumps(body)) if body is not None else 0
        self.requests.append(Request(method, url, dict(params or {}), sent, len(json.dumps(response, default=str)),
                                     response))
        return response

    def count(self, pattern: str, method: str | None = None) -> int:
        return sum(1 for r in self.requests if re.search(pattern, r.path) and method in (None, r.method))

    def received(self) -> int:
        return sum(r.received for r in self.requests)

    def hits_sources(self) -> Iterator[dict[str, Any]]:
        for r in self.requests:
            if isinstance(r.response, dict):
                for hit in (r.response.get("hits") or {}).get("hits", []):
                    yield hit.get("_source") or {}

    def reset(self) -> None:
        self.requests.clear()


def _scroll(client: OpenSearch, index: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    result = client.search(index=index, body=body, scroll="5m", request_timeout=120)
    while result["hits"]["hits"]:
        yield from result["hits"]["hits"]
        result = client.scroll(scroll_id=result["_scroll_id"], scroll="5m", request_timeout=120)
    client.clear_scroll(scroll_id=result["_scroll_id"])


def run_upstream(client: OpenSearch, gazette_index: str, themes: list[Theme], ids: list[str], model: Any) -> None:
    """Upstream's theme loop (HEAD db9a515 as described in upstream-pipeline.md §7.3, §8.1, §8.2)."""
    from sentence_transformers import util

    cnpj = re.compile(r"(^|[^\d])(\d\.?\d\.?\d\.?\d\.?\d\.?\d\.?\d\.?\d/?\d{4}-?\d{2})($|[^\d])")
    for theme in themes:
        client.indices.create(index=theme.index, body=excerpt_index_body())
        excerpt_ids: list[str] = []
        for query in theme.queries:
            for start in range(0, len(ids), 250):
                batch = ids[start:start + 250]
                macro: dict[str, Any] = {"span_or": {"clauses": []}}
                for macro_set in query.term_sets:
                    near: dict[str, Any] = {"span_near": {"clauses": [], "slop": 20, "in_order": False}}
                    for term_set in macro_set:
                        syn: dict[str, Any] = {"span_or": {"clauses": []}}
                        for term in term_set:
                            tokens = client.indices.analyze(
                                body={"text": term, "field": "source_text.with_stopwords"}, index=gazette_index)
                            syn["span_or"]["clauses"].append({"span_near": {"clauses": [
                                {"span_term": {"source_text.with_stopwords": t["token"]}} for t in tokens["tokens"]],
                                "slop": 0, "in_order": True}})
                        near["span_near"]["clauses"].append(syn)
                    macro["span_or"]["clauses"].append(near)
                body = {"query": {"bool": {"must": [macro], "filter": {"ids": {"values": batch}}}}, "size": 5,
                        "highlight": {"fields": {"source_text.with_stopwords": {
                            "type": "unified", "fragment_size": 2000, "number_of_fragments": 10,
                            "pre_tags": [""], "post_tags": [""]}}}}
                for hit in _scroll(client, gazette_index, body):
                    if not hit.get("highlight"):
                        continue
                    g = hit["_source"]
                    for raw in hit["highlight"]["source_text.with_stopwords"]:
                        clean = re.sub(r"\s+", " ", raw)
                        if len(clean) < 200:
                            continue
                        eid = f"{g['file_checksum']}_{hashlib.md5(raw.encode()).hexdigest()}"
                        doc = {"excerpt": clean, "excerpt_subthemes": [query.title], "excerpt_id": eid,
                               "source_index_id": g["file_checksum"], "source_created_at": g["created_at"],
                               "source_database_id": g["id"], "source_date": g["date"],
                               "source_edition_number": g["edition_number"], "source_file_raw_txt": g["file_raw_txt"],
                               "source_is_extra_edition": g["is_extra_edition"],
                               "source_file_checksum": g["file_checksum"], "source_file_path": g["file_path"],
                               "source_file_url": g["file_url"], "source_power": g["power"],
                               "source_processed": g["processed"], "source_scraped_at": g["scraped_at"],
                               "source_state_code": g["state_code"], "source_territory_id": g["territory_id"],
                               "source_territory_name": g["territory_name"], "source_url": g["url"]}
                        client.index(index=theme.index, body=doc, id=eid, refresh=True)
                        excerpt_ids.append(eid)
        if not excerpt_ids:
            continue
        titles = model.encode([q.title for q in theme.queries], convert_to_tensor=True)
        by_ids = {"query": {"bool": {"filter": {"ids": {"values": excerpt_ids}}}}, "size": 50}
        for hit in list(_scroll(client, theme.index, by_ids)):
            excerpt = hit["_source"]
            vector = model.encode(excerpt["excerpt"], convert_to_tensor=True)
            excerpt["excerpt_embedding_score"] = util.semantic_search(vector, titles, top_k=1)[0][0]["score"]
            client.index(index=theme.index, body=excerpt, id=excerpt["excerpt_id"], refresh=True)
        for case in theme.cases:
            body = {"query": {"bool": {"should": [{"match_phrase": {"excerpt.with_stopwords": v}} for v in case.values],
                                       "filter": {"ids": {"values": excerpt_ids}}}}, "size": 50,
                    "highlight": {"fields": {"excerpt.with_stopwords": {
                        "type": "fvh", "matched_fields": ["excerpt", "excerpt.with_stopwords"], "fragment_size": 10000,
                        "number_of_fragments": 1, "pre_tags": [f"<{case.category}>"],
                        "post_tags": [f"</{case.category}>"]}}}}
            for hit in list(_scroll(client, theme.index, body)):
                if not hit.get("highlight"):
                    continue
                excerpt = hit["_source"]
                excerpt["excerpt_entities"] = list(set(excerpt.get("excerpt_entities", [])) | {case.title})
                excerpt["excerpt"] = hit["highlight"]["excerpt.with_stopwords"][0]
                client.index(index=theme.index, body=excerpt, id=excerpt["excerpt_id"], refresh=True)
        for hit in list(_scroll(client, theme.index, by_ids)):
            excerpt = hit["_source"]
            found = cnpj.findall(excerpt["excerpt"])
            if not found:
                continue
            for _, number, _ in set(found):
                excerpt["excerpt"] = excerpt["excerpt"].replace(number, f"<entidadecnpj>{number}</entidadecnpj>")
            excerpt["excerpt_entities"] = list(set(excerpt.get("excerpt_entities", [])) | {"CNPJ"})
            client.index(index=theme.index, body=excerpt, id=excerpt["excerpt_id"], refresh=True)


@pytest.fixture()
def upstream() -> Callable[..., None]:
    return run_upstream


@pytest.fixture()
def record() -> Callable[[OpenSearch], Recorder]:
    """`record(client)` starts recording that client's requests."""
    return Recorder


@pytest.fixture()
def write_themes(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    def write(data: dict[str, Any]) -> Path:
        path = tmp_path / f"themes-{uuid.uuid4().hex[:6]}.json"
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        return path

    return write
