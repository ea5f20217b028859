"""Fewer requests, same results: batched `_analyze`, `_msearch` rounds and their error items (fake clients).

The integration tier compares the real stage with upstream's replay on OpenSearch; these tests pin
the request logic itself, including cases that are awkward to provoke on a real cluster (an error
item inside an `_msearch` answer, an overloaded item that recovers, offsets that cannot be split).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from opensearchpy.exceptions import RequestError

from qd_extractor.excerpts import analyze, entities, fetch
from qd_extractor.excerpts.extraction import ThemedExtractor
from qd_extractor.excerpts.themes import EntityCase, Theme, ThemeQuery
from qd_extractor.search.bulk import SearchUnavailableError


class FakeIndices:
    """`_analyze` like OpenSearch: lowercase words, offsets running on across the values of an array."""

    def __init__(self, gap: int = analyze.OFFSET_GAP) -> None:
        self.calls: list[Any] = []
        self.gap = gap

    def analyze(self, **kwargs: Any) -> dict[str, Any]:
        text = kwargs["body"]["text"]
        self.calls.append(text)
        tokens, base = [], 0
        for value in [text] if isinstance(text, str) else text:
            for m in re.finditer(r"\w+", value):
                tokens.append({"token": m.group().lower(), "start_offset": base + _u16(value[:m.start()]),
                               "end_offset": base + _u16(value[:m.end()])})
            base += _u16(value) + self.gap
        return {"tokens": tokens}


def _u16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


class FakeClient:
    def __init__(self, gap: int = analyze.OFFSET_GAP) -> None:
        self.indices = FakeIndices(gap)
        self.msearches: list[list[dict[str, Any]]] = []
        self.answers: list[list[dict[str, Any]]] = []

    def msearch(self, *, index: str, body: list[dict[str, Any]], **_: Any) -> dict[str, Any]:
        self.msearches.append(body[1::2])
        return {"responses": self.answers.pop(0)}


def test_all_terms_in_one_request_split_by_offsets() -> None:
    analyze.clear_cache()
    client = FakeClient()
    analyzer = analyze.TermAnalyzer(client, "g")  # type: ignore[arg-type]
    terms = ["Lei Federal", "11 de julho de 1989", "", "—", "🌳 lei", "lei federal", "Lei Federal"]
    analyzer.prefetch(terms)
    assert len(client.indices.calls) == analyzer.calls == 1
    assert client.indices.calls[0] == [*dict.fromkeys(terms), analyze.SENTINEL]  # each distinct term once
    assert analyzer.tokens("Lei Federal") == ("lei", "federal")
    assert analyzer.tokens("11 de julho de 1989") == ("11", "de", "julho", "de", "1989")
    assert analyzer.tokens("") == () and analyzer.tokens("—") == ()
    assert analyzer.tokens("🌳 lei") == ("lei",)  # a non-BMP character counts two UTF-16 units
    analyzer.prefetch(terms)
    assert analyzer.calls == 1  # all cached


def test_offsets_that_do_not_fit_fall_back_to_one_request_per_term() -> None:
    analyze.clear_cache()
    client = FakeClient(gap=5)  # not the gap the splitter expects: a token would straddle two terms
    analyzer = analyze.TermAnalyzer(client, "g")  # type: ignore[arg-type]
    analyzer.prefetch(["lei federal", "crimes ambientais", "ibama"])
    assert analyzer.calls == 1 + 3
    assert analyzer.tokens("crimes ambientais") == ("crimes", "ambientais")
    assert analyze.split_tokens(["ab"], [{"token": "x", "start_offset": 0, "end_offset": 9}]) is None


def _hits(*ids: str, total: int | None = None) -> dict[str, Any]:
    value = len(ids) if total is None else total
    return {"hits": {"total": {"value": value, "relation": "eq"}, "hits": [{"_id": i} for i in ids]}}


def test_msearch_error_item_raises_what_a_search_would() -> None:
    client = FakeClient()
    client.answers = [[_hits("a"), {"error": {"type": "search_phase_execution_exception"}, "status": 400}]]
    with pytest.raises(RequestError) as err:
        fetch.msearch(client, "g", [{"q": 1}, {"q": 2}])  # type: ignore[arg-type]
    assert err.value.status_code == 400 and err.value.error == "search_phase_execution_exception"


def test_msearch_retries_only_overloaded_items() -> None:
    client = FakeClient()
    busy = {"error": {"type": "rejected_execution_exception"}, "status": 429}
    client.answers = [[_hits("a"), busy, _hits("c")], [_hits("b")]]
    out = fetch.msearch(client, "g", [{"q": 1}, {"q": 2}, {"q": 3}], backoff_s=0)  # type: ignore[arg-type]
    assert [r["hits"]["hits"][0]["_id"] for r in out] == ["a", "b", "c"]
    assert client.msearches == [[{"q": 1}, {"q": 2}, {"q": 3}], [{"q": 2}]]
    client.answers = [[busy], [busy]]
    with pytest.raises(SearchUnavailableError):
        fetch.msearch(client, "g", [{"q": 1}], retries=1, backoff_s=0)  # type: ignore[arg-type]


class FakeWriter:
    """TrackedWriter's surface over a dict of documents; updates land at flush, as with `_bulk`."""

    def __init__(self, docs: dict[str, dict[str, Any]] | None = None) -> None:
        self.docs = docs if docs is not None else {}
        self.queued: list[tuple[str, dict[str, Any], bool]] = []
        self.refreshes = 0

    def index(self, index: str, doc_id: str, source: dict[str, Any]) -> None:
        self.queued.append((doc_id, source, True))

    def update(self, index: str, doc_id: str, fields: dict[str, Any]) -> None:
        self.queued.append((doc_id, fields, False))

    def flush(self, *, refresh: bool = False) -> None:
        for doc_id, fields, full in self.queued:
            self.docs[doc_id] = dict(fields) if full else {**self.docs.get(doc_id, {}), **fields}
        self.queued.clear()
        self.refreshes += int(refresh)


def _fragment(doc: str) -> str:
    return f"fragment of {doc} " + "x" * 200


def test_themed_rounds_exclude_returned_documents_and_the_last_query_wins() -> None:
    theme = Theme(name="t", index="t-idx", cases=(), queries=(
        ThemeQuery(title="Q1", term_sets=((("a",),),)), ThemeQuery(title="Q2", term_sets=((("b",),),))))
    matches = {0: ["d1", "d2", "d3"], 1: ["d2"]}  # d2's fragment is matched by both queries

    def answer(body: dict[str, Any], pos: int) -> dict[str, Any]:
        allowed = body["query"]["bool"]["filter"]["ids"]["values"]
        found = [d for d in matches[pos] if d in allowed]
        return {"hits": {"total": {"value": len(found), "relation": "eq"}, "hits": [
            {"_id": d, "_source": {"file_checksum": d}, "highlight": {"source_text.with_stopwords": [_fragment(d)]}}
            for d in found[:body["size"]]]}}

    class Client(FakeClient):
        def msearch(self, *, index: str, body: list[dict[str, Any]], **_: Any) -> dict[str, Any]:
            bodies = body[1::2]
            self.msearches.append(bodies)
            positions = [0, 1] if len(self.msearches) == 1 else [0]
            return {"responses": [answer(b, p) for b, p in zip(bodies, positions, strict=True)]}

    client = Client()
    writer = FakeWriter()
    extractor = ThemedExtractor(client, "g", analyze.TermAnalyzer(client, "g"), writer,  # type: ignore[arg-type]
                                page_size=2)
    ids = extractor.extract(theme, ["d1", "d2", "d3", "d4"])
    writer.flush()
    # Round 1: both queries, 2 hits a page; round 2: only Q1, without the documents it already returned.
    assert extractor.requests == 2 and extractor.searches == 3
    assert client.msearches[1][0]["query"]["bool"]["filter"]["ids"]["values"] == ["d3", "d4"]
    assert len(ids) == 3 and {writer.docs[i]["source_file_checksum"] for i in ids} == {"d1", "d2", "d3"}
    subthemes = {writer.docs[i]["source_file_checksum"]: writer.docs[i]["excerpt_subthemes"] for i in ids}
    assert subthemes == {"d1": ["Q1"], "d2": ["Q2"], "d3": ["Q1"]}


class TaggingClient(FakeClient):
    """Entity searches over `writer.docs`: a case matches where a value occurs in the text (case-blind)."""

    def __init__(self, theme: Theme, writer: FakeWriter) -> None:
        super().__init__()
        self.theme, self.writer = theme, writer

    def msearch(self, *, index: str, body: list[dict[str, Any]], **_: Any) -> dict[str, Any]:
        bodies = body[1::2]
        self.msearches.append(bodies)
        return {"responses": [self._one(b) for b in bodies]}

    def _one(self, body: dict[str, Any]) -> dict[str, Any]:
        ids = body["query"]["bool"]["filter"]["ids"]["values"]
        if "should" not in body["query"]["bool"]:
            return {"hits": {"hits": [{"_id": i, "_source": self.writer.docs[i]} for i in ids]}}
        values = tuple(s["match_phrase"]["excerpt.with_stopwords"] for s in body["query"]["bool"]["should"])
        assert body["query"]["bool"]["minimum_should_match"] == 1  # matching excerpts only
        case = next(c for c in self.theme.cases if c.values == values)
        hits = []
        for i in ids:
            tagged = _tag(self.writer.docs[i]["excerpt"], case)
            if tagged is not None:
                hits.append({"_id": i, "_source": {"excerpt_entities": self.writer.docs[i].get("excerpt_entities")},
                             "highlight": {"excerpt.with_stopwords": [tagged]}})
        return {"hits": {"hits": hits}}


def _tag(text: str, case: EntityCase) -> str | None:
    """A value found as whole words (a tag between words breaks the phrase, as a tag token does)."""
    out = text
    for value in case.values:
        out = re.sub(rf"(?<![\w<>/])({re.escape(value)})(?![\w<>])", rf"<{case.category}>\1</{case.category}>",
                     out, flags=re.IGNORECASE)
    return None if out == text else out


def _upstream_tags(theme: Theme, docs: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Upstream's order: every case over every excerpt, one case after the other, then CNPJs."""
    out = {k: dict(v) for k, v in docs.items()}
    for case in theme.cases:
        for doc in out.values():
            tagged = _tag(doc["excerpt"], case)
            if tagged is not None:
                doc["excerpt"] = tagged
                doc["excerpt_entities"] = sorted({*(doc.get("excerpt_entities") or []), case.title})
    for doc in out.values():
        if "12.345.678/0001-90" in doc["excerpt"]:
            doc["excerpt"] = doc["excerpt"].replace("12.345.678/0001-90", "<entidadecnpj>12.345.678/0001-90"
                                                                          "</entidadecnpj>")
            doc["excerpt_entities"] = sorted({*(doc.get("excerpt_entities") or []), "CNPJ"})
    return out


def test_entity_rounds_give_upstreams_sequential_result() -> None:
    theme = Theme(name="t", index="t-idx", queries=(), cases=(
        EntityCase(category="amb", title="Meio", values=("meio ambiente",)),
        EntityCase(category="amb", title="Secretaria", values=("secretaria de meio ambiente",)),
        EntityCase(category="amb", title="IBAMA", values=("ibama",)),
        EntityCase(category="org", title="Nada", values=("ninguém",)),
        EntityCase(category="org", title="Prefeitura", values=("prefeitura",))))
    docs = {
        "e1": {"excerpt": "A Secretaria de Meio Ambiente e o IBAMA, com a Prefeitura."},  # 3 tags; case 2 lost
        "e2": {"excerpt": "Só o IBAMA, CNPJ 12.345.678/0001-90."},
        "e3": {"excerpt": "Nada aqui."},
        "e4": {"excerpt": "secretaria de meio ambiente sem mais"},
    }
    writer = FakeWriter({k: dict(v) for k, v in docs.items()})
    client = TaggingClient(theme, writer)
    tagged = entities.tag_entities(client, writer, theme, list(docs), id_batch=250)  # type: ignore[arg-type]
    writer.flush()
    assert writer.docs == _upstream_tags(theme, docs)
    assert "<amb>Meio Ambiente</amb>" in writer.docs["e1"]["excerpt"]
    assert writer.docs["e1"]["excerpt_entities"] == ["IBAMA", "Meio", "Prefeitura"]
    assert tagged == 3 + 2 + 1
    # Round 1 asks every case (plus the texts); e1 then needs a round for IBAMA and one for Prefeitura:
    # 3 requests and 2 refreshes, where upstream's order takes 5 searches, one read and up to 5 refreshes.
    assert len(client.msearches) == 3 and len(client.msearches[0]) == len(theme.cases) + 1
    assert writer.refreshes == 2


class FakeBulk:
    """BulkWriter's surface: dispatches by itself every `every` actions, as a full batch does."""

    def __init__(self, every: int) -> None:
        self.every = every
        self.pending = 0
        self.requests: list[bool] = []  # the `refresh` flag of each `_bulk` request sent

    @property
    def pending_count(self) -> int:
        return self.pending

    def add(self, index: str, doc_id: str, source: dict[str, Any]) -> list[Any]:
        self.pending += 1
        if self.pending >= self.every:
            self.requests.append(False)
            self.pending = 0
        return []

    partial_update = add

    def flush(self, *, refresh: bool | None = None) -> list[Any]:
        if self.pending:
            self.requests.append(bool(refresh))
            self.pending = 0
        return []


class RefreshCounter:
    def __init__(self) -> None:
        self.refreshed: list[str] = []

    def refresh(self, *, index: str) -> dict[str, Any]:
        self.refreshed.append(index)
        return {}


@pytest.mark.parametrize(("writes", "every", "bulk_refresh", "explicit"), [
    (3, 10, [True], []),  # every write since the last refresh is pending: the refresh rides on the `_bulk`
    (3, 2, [False, False], ["x"]),  # one request already went without it: an explicit `_refresh` follows
    (0, 2, [], []),  # nothing written: nothing to refresh
])
def test_refresh_rides_on_the_bulk_only_when_it_covers_every_write(writes: int, every: int,
                                                                     bulk_refresh: list[bool],
                                                                     explicit: list[str]) -> None:
    from qd_extractor.excerpts.writes import TrackedWriter

    bulk, client = FakeBulk(every), FakeClient()
    client.indices = RefreshCounter()  # type: ignore[assignment]
    writer = TrackedWriter(bulk, client)  # type: ignore[arg-type]
    for n in range(writes):
        writer.update("x", f"d{n}", {"f": n})
    writer.flush(refresh=True)
    assert bulk.requests == bulk_refresh
    assert client.indices.refreshed == explicit  # type: ignore[attr-defined]
    writer.update("x", "again", {"f": 0})
    writer.flush()  # no refresh asked: none sent, and the next refresh still knows this write is unrefreshed
    assert bulk.requests[-1] is False and client.indices.refreshed == explicit  # type: ignore[attr-defined]
