"""Upstream's excerpt algorithm, replayed, and a recorder of every OpenSearch request: for comparisons.

The excerpts integration tests and `bench/excerpts_requests.py` both run the extractor's excerpts
stage and upstream's algorithm (okfn-brasil/querido-diario-data-processing, HEAD db9a515, as
described in upstream-pipeline.md §7.3, §8.1, §8.2) on the same gazettes, and compare the documents
and the requests. This module is the one copy of both: `run_upstream` (full `_source`, `_analyze`
per term per batch, one `refresh=True` index request per excerpt write, excerpts encoded one at a
time) and `WireRecorder`, which counts requests at the connection (below the client's retries), so
nothing the code under test sends can escape it.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import json
import re
import time
from collections.abc import Iterator, Sequence
from typing import Any

#: The gazette field upstream analyses terms with and searches in.
GAZETTE_FIELD = "source_text.with_stopwords"
CNPJ = re.compile(r"(^|[^\d])(\d\.?\d\.?\d\.?\d\.?\d\.?\d\.?\d\.?\d/?\d{4}-?\d{2})($|[^\d])")
_SEARCH_PATHS = ("/_search", "/_search/scroll", "/_msearch")


@dataclasses.dataclass
class Request:
    """One HTTP request as it went over the wire (bodies in bytes; headers not counted)."""

    method: str
    path: str
    params: dict[str, Any]
    status: int
    sent: int
    received: int
    seconds: float
    #: Hits whose `_source` held a gazette `source_text`, and the UTF-8 bytes of those texts.
    hits_with_source_text: int
    source_text_bytes: int
    #: `_source` of every hit the response carried (searches, scrolls, `_msearch` items), if kept.
    sources: list[dict[str, Any]]


class WireRecorder:
    """Wraps each connection of `client` and records every request (only inside `recording` if asked)."""

    def __init__(self, client: Any, *, keep_sources: bool = True, only_in_phase: bool = False) -> None:
        self.requests: list[Request] = []
        self.by_phase: dict[str, list[Request]] = collections.defaultdict(list)
        self.phase: str | None = None
        self._keep_sources = keep_sources
        self._only_in_phase = only_in_phase
        pool = client.transport.connection_pool
        for conn in list(getattr(pool, "connections", None) or [pool.get_connection()]):
            conn.perform_request = self._wrap(conn.perform_request)

    def _wrap(self, real: Any) -> Any:
        def perform(method: str, url: str, params: Any = None, body: Any = None, **kw: Any) -> Any:
            start = time.perf_counter()
            status, received, text = 0, 0, ""
            try:
                status, headers, text = real(method, url, params, body, **kw)
                received = len(text.encode("utf-8", "surrogatepass")) if isinstance(text, str) else len(text or b"")
                return status, headers, text
            except Exception as exc:
                code = getattr(exc, "status_code", None)
                status = code if isinstance(code, int) else 0
                info = getattr(exc, "info", None)
                received = len(info.encode()) if isinstance(info, str) else len(json.dumps(info)) if info else 0
                raise
            finally:
                if self.phase is not None or not self._only_in_phase:
                    path = url.split("?", maxsplit=1)[0]
                    sources = _hit_sources(path, text)
                    texts = [s["source_text"] for s in sources if isinstance(s.get("source_text"), str)]
                    request = Request(method, path, dict(params or {}), status, body_bytes(body), received,
                                      time.perf_counter() - start, len(texts), sum(len(t.encode()) for t in texts),
                                      sources if self._keep_sources else [])
                    self.requests.append(request)
                    if self.phase is not None:
                        self.by_phase[self.phase].append(request)
        return perform

    @contextlib.contextmanager
    def recording(self, phase: str) -> Iterator[list[Request]]:
        """Tag the requests made inside the block with `phase` (yields that phase's list)."""
        self.phase = phase
        try:
            yield self.by_phase[phase]
        finally:
            self.phase = None

    def count(self, pattern: str, method: str | None = None) -> int:
        return sum(1 for r in self.requests if re.search(pattern, r.path) and method in (None, r.method))

    def received(self) -> int:
        return sum(r.received for r in self.requests)

    def hits_sources(self) -> Iterator[dict[str, Any]]:
        for r in self.requests:
            yield from r.sources

    def reset(self) -> None:
        self.requests.clear()
        self.by_phase.clear()


def body_bytes(body: Any) -> int:
    """Bytes of a request body as a connection gets it: str, bytes, or a list of parts sent one after another."""
    if isinstance(body, str):
        return len(body.encode("utf-8", "surrogatepass"))
    if isinstance(body, bytes | bytearray | memoryview):
        return len(body)
    if isinstance(body, list | tuple):
        return sum(body_bytes(part) for part in body)
    return 0


def _hit_sources(path: str, text: Any) -> list[dict[str, Any]]:
    if not isinstance(text, str) or not path.endswith(_SEARCH_PATHS):
        return []
    try:
        response = json.loads(text)
    except ValueError:
        return []
    responses = response.get("responses") if isinstance(response, dict) else None
    out: list[dict[str, Any]] = []
    for item in responses if isinstance(responses, list) else [response]:
        hits = (item.get("hits") or {}).get("hits") if isinstance(item, dict) else None
        out.extend(h.get("_source") or {} for h in hits or [] if isinstance(h, dict))
    return out


def _scroll(client: Any, index: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    result = client.search(index=index, body=body, scroll="5m", request_timeout=120)
    while result["hits"]["hits"]:
        yield from result["hits"]["hits"]
        result = client.scroll(scroll_id=result["_scroll_id"], scroll="5m", request_timeout=120)
    client.clear_scroll(scroll_id=result["_scroll_id"])


def _span_query(client: Any, gazette_index: str, query: Any) -> dict[str, Any]:
    """Upstream's span clause, one `_analyze` request per term."""
    macro: dict[str, Any] = {"span_or": {"clauses": []}}
    for macro_set in query.term_sets:
        near: dict[str, Any] = {"span_near": {"clauses": [], "slop": 20, "in_order": False}}
        for term_set in macro_set:
            syn: dict[str, Any] = {"span_or": {"clauses": []}}
            for term in term_set:
                tokens = client.indices.analyze(body={"text": term, "field": GAZETTE_FIELD}, index=gazette_index)
                words = [{"span_term": {GAZETTE_FIELD: t["token"]}} for t in tokens["tokens"]]
                syn["span_or"]["clauses"].append({"span_near": {"clauses": words, "slop": 0, "in_order": True}})
            near["span_near"]["clauses"].append(syn)
        macro["span_or"]["clauses"].append(near)
    return macro


def _excerpt(g: dict[str, Any], raw: str, clean: str, title: str) -> dict[str, Any]:
    eid = f"{g['file_checksum']}_{hashlib.md5(raw.encode()).hexdigest()}"
    return {"excerpt": clean, "excerpt_subthemes": [title], "excerpt_id": eid,
            "source_index_id": g["file_checksum"], "source_created_at": g["created_at"],
            "source_database_id": g["id"], "source_date": g["date"],
            "source_edition_number": g["edition_number"], "source_file_raw_txt": g["file_raw_txt"],
            "source_is_extra_edition": g["is_extra_edition"],
            "source_file_checksum": g["file_checksum"], "source_file_path": g["file_path"],
            "source_file_url": g["file_url"], "source_power": g["power"],
            "source_processed": g["processed"], "source_scraped_at": g["scraped_at"],
            "source_state_code": g["state_code"], "source_territory_id": g["territory_id"],
            "source_territory_name": g["territory_name"], "source_url": g["url"]}


def run_upstream(client: Any, gazette_index: str, themes: Sequence[Any], ids: list[str], model: Any) -> None:
    """Upstream's theme loop over gazette documents `ids`, into each theme's `index` (created here)."""
    from sentence_transformers import util

    from qd_extractor.search import excerpt_index_body

    for theme in themes:
        client.indices.create(index=theme.index, body=excerpt_index_body())
        excerpt_ids: list[str] = []
        for query in theme.queries:
            for start in range(0, len(ids), 250):
                body = {"query": {"bool": {"must": [_span_query(client, gazette_index, query)],
                                           "filter": {"ids": {"values": ids[start:start + 250]}}}}, "size": 5,
                        "highlight": {"fields": {GAZETTE_FIELD: {
                            "type": "unified", "fragment_size": 2000, "number_of_fragments": 10,
                            "pre_tags": [""], "post_tags": [""]}}}}
                for hit in _scroll(client, gazette_index, body):
                    if not hit.get("highlight"):
                        continue
                    for raw in hit["highlight"][GAZETTE_FIELD]:
                        clean = re.sub(r"\s+", " ", raw)
                        if len(clean) < 200:
                            continue
                        doc = _excerpt(hit["_source"], raw, clean, query.title)
                        client.index(index=theme.index, body=doc, id=doc["excerpt_id"], refresh=True)
                        excerpt_ids.append(doc["excerpt_id"])
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
            found = CNPJ.findall(excerpt["excerpt"])
            if not found:
                continue
            for _, number, _ in set(found):
                excerpt["excerpt"] = excerpt["excerpt"].replace(number, f"<entidadecnpj>{number}</entidadecnpj>")
            excerpt["excerpt_entities"] = list(set(excerpt.get("excerpt_entities", [])) | {"CNPJ"})
            client.index(index=theme.index, body=excerpt, id=excerpt["excerpt_id"], refresh=True)
