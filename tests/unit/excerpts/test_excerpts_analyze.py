"""The `_analyze` cache, counted with a fake client (the integration tier counts real requests)."""

from __future__ import annotations

import uuid
from typing import Any

from qd_extractor.excerpts import queries
from qd_extractor.excerpts.analyze import TermAnalyzer
from qd_extractor.excerpts.themes import load_themes, shipped_path


class FakeIndices:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def analyze(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {"tokens": [{"token": w.lower()} for w in kwargs["body"]["text"].split()]}


class FakeClient:
    def __init__(self) -> None:
        self.indices = FakeIndices()


def test_one_call_per_distinct_term_for_the_shipped_themes() -> None:
    client = FakeClient()
    index = f"gazettes-{uuid.uuid4().hex}"  # the cache is per (index, field, term) for the process
    analyzer = TermAnalyzer(client, index)  # type: ignore[arg-type]
    themes = load_themes(shipped_path())
    all_terms = [t for theme in themes for q in theme.queries for t in q.terms()]
    for _batch in range(3):  # upstream re-analyses every term for every batch of 250 gazettes
        for theme in themes:
            for q in theme.queries:
                queries.span_clause(q, analyzer.tokens)
    assert len(all_terms) == 671  # upstream's count per batch (§7.3)
    assert analyzer.calls == len(client.indices.calls) == len(set(all_terms))
    assert {c["body"]["text"] for c in client.indices.calls} == set(all_terms)
    assert all(c["index"] == index and c["body"]["field"] == "source_text.with_stopwords"
               for c in client.indices.calls)
    # A second analyzer in the same process (e.g. a second range) sends nothing at all.
    again = TermAnalyzer(FakeClient(), index)  # type: ignore[arg-type]
    assert again.tokens("lei federal") == ("lei", "federal")
    assert again.calls == 0


def test_tokens_keep_analyzer_order() -> None:
    analyzer = TermAnalyzer(FakeClient(), f"g-{uuid.uuid4().hex}")  # type: ignore[arg-type]
    assert analyzer("11 de julho de 1989") == ("11", "de", "julho", "de", "1989")
