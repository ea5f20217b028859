"""Themed excerpt extraction for one batch of gazette documents (upstream §7.3).

For each query of a theme, one scrolled span search over the batch (an ids filter), each highlight
fragment of 200+ chars becoming an excerpt document written with `_id = excerpt_id`. A fragment
matched again by a later query is overwritten, so `excerpt_subthemes` ends as the last matching
query's title, as upstream. The search returns highlights and metadata only, never the gazette text.
"""

from __future__ import annotations

from typing import Any

from opensearchpy import OpenSearch

from qd_extractor.excerpts import fetch
from qd_extractor.excerpts.analyze import TermAnalyzer
from qd_extractor.excerpts.queries import excerpt_documents, span_clause, themed_search
from qd_extractor.excerpts.themes import Theme
from qd_extractor.excerpts.writes import TrackedWriter


class ThemedExtractor:
    """Runs a theme's queries over batches of gazette document ids and queues the excerpts."""

    def __init__(self, client: OpenSearch, gazette_index: str, analyzer: TermAnalyzer, writer: TrackedWriter,
                 *, page_size: int = 5) -> None:
        self._client = client
        self._gazette_index = gazette_index
        self._analyzer = analyzer
        self._writer = writer
        self._page_size = page_size
        # The span clause depends only on the query and the analyzer: built once per process.
        self._clauses: dict[tuple[str, int], dict[str, Any]] = {}
        #: Themed searches started (one per query per batch) and excerpt writes queued.
        self.searches = 0
        self.written = 0

    def extract(self, theme: Theme, doc_ids: list[str]) -> list[str]:
        """Queue the excerpts of `doc_ids` for every query of `theme`; return their ids (no repeats)."""
        written: dict[str, None] = {}
        for position, query in enumerate(theme.queries):
            key = (theme.index, position)
            clause = self._clauses.get(key)
            if clause is None:
                clause = self._clauses[key] = span_clause(query, self._analyzer.tokens)
            body = themed_search(clause, doc_ids, size=self._page_size)
            self.searches += 1
            for hit in fetch.scroll_hits(self._client, self._gazette_index, body):
                for doc in excerpt_documents(hit, query.title):
                    self._writer.index(theme.index, doc["excerpt_id"], doc)
                    written[doc["excerpt_id"]] = None
                    self.written += 1
        return list(written)
