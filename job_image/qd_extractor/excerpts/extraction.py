"""Themed excerpt extraction for one batch of gazette documents (upstream §7.3).

For each query of a theme, a span search over the batch (an ids filter), each highlight fragment of
200+ chars becoming an excerpt document written with `_id = excerpt_id`. The search returns
highlights and metadata only, never the gazette text.

Upstream ran one scroll per query (a request per 5 hits). Here every query of the theme goes into
one `_msearch`, `page_size` hits each. A query with more hits is asked again in the next round
with the documents it already returned excluded from its ids filter, so no hit is missed or repeated
whatever the scores do between rounds, and no scroll context is needed; a batch of N documents needs
at most ceil(N / page_size) rounds. Upstream overwrote an excerpt matched by several queries, so
`excerpt_subthemes` ends as the *last* matching query's title: since rounds mix queries, an excerpt
is written only when no later query has written it yet, which leaves the same final documents.
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
                 *, page_size: int = 50) -> None:
        self._client = client
        self._gazette_index = gazette_index
        self._analyzer = analyzer
        self._writer = writer
        self._page_size = page_size
        # The span clause depends only on the query and the analyzer: built once per process.
        self._clauses: dict[tuple[str, int], dict[str, Any]] = {}
        #: Themed searches run (a query in a round), `_msearch` requests sent, excerpt writes queued.
        self.searches = 0
        self.requests = 0
        self.written = 0

    def extract(self, theme: Theme, doc_ids: list[str]) -> list[str]:
        """Queue the excerpts of `doc_ids` for every query of `theme`; return their ids (no repeats)."""
        writer_of: dict[str, int] = {}  # excerpt id -> position of the query whose document was queued
        pending: dict[int, list[str]] = {pos: list(doc_ids) for pos in range(len(theme.queries))} if doc_ids else {}
        while pending:
            positions = sorted(pending)
            bodies = [themed_search(self._clause(theme, pos), pending[pos], size=self._page_size)
                      for pos in positions]
            responses = fetch.msearch(self._client, self._gazette_index, bodies)
            self.requests += 1
            self.searches += len(bodies)
            later: dict[int, list[str]] = {}
            for pos, response in zip(positions, responses, strict=True):
                hits = response["hits"]["hits"]
                title = theme.queries[pos].title
                for hit in hits:
                    for doc in excerpt_documents(hit, title):
                        eid = doc["excerpt_id"]
                        if writer_of.get(eid, -1) > pos:
                            continue  # a later query matched it too: upstream's last write wins
                        writer_of[eid] = pos
                        self._writer.index(theme.index, eid, doc)
                        self.written += 1
                if _more(response, len(hits), self._page_size):
                    returned = {str(h["_id"]) for h in hits}
                    rest = [d for d in pending[pos] if d not in returned]
                    if rest:
                        later[pos] = rest
            pending = later
        return list(writer_of)

    def _clause(self, theme: Theme, pos: int) -> dict[str, Any]:
        key = (theme.index, pos)
        clause = self._clauses.get(key)
        if clause is None:
            clause = self._clauses[key] = span_clause(theme.queries[pos], self._analyzer.tokens)
        return clause


def _more(response: dict[str, Any], returned: int, page: int) -> bool:
    """Whether a search left hits out: fewer hits than the page, or all of an exact total, means no."""
    if returned < page or returned == 0:
        return False
    total = response["hits"].get("total")
    if isinstance(total, dict) and total.get("relation") == "eq":
        return returned < int(total["value"])
    return True
