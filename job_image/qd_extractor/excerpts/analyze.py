"""Term analysis through the gazette index's own analyzer, cached for the life of the process.

Upstream calls `_analyze` for every term of every query for every batch (about 671 calls per batch
for the two shipped themes, most of them repeats such as "lei federal"). A term's tokens depend only
on the index's analysis settings, which cannot change while the index exists, so one call per
distinct (index, field, term) is enough: the cache is module-level and never evicted (the shipped
themes hold about 600 distinct terms).
"""

from __future__ import annotations

import logging
import time

from opensearchpy import OpenSearch

from qd_extractor import logs
from qd_extractor.excerpts import fetch
from qd_extractor.excerpts.queries import GAZETTE_FIELD

_CACHE: dict[tuple[str, str, str], tuple[str, ...]] = {}
_log = logging.getLogger("qd_extractor.excerpts")


class TermAnalyzer:
    """`tokens(term)`: the tokens OpenSearch produces for `term` in `index`'s `field`."""

    def __init__(self, client: OpenSearch, index: str, field: str = GAZETTE_FIELD) -> None:
        self._client = client
        self._index = index
        self._field = field
        #: `_analyze` requests this analyzer actually sent (cache misses).
        self.calls = 0

    def tokens(self, term: str) -> tuple[str, ...]:
        key = (self._index, self._field, term)
        cached = _CACHE.get(key)
        if cached is not None:
            return cached
        start = time.monotonic()
        response = fetch.call(self._client.indices.analyze, index=self._index,
                              body={"text": term, "field": self._field})
        self.calls += 1
        tokens = tuple(str(t["token"]) for t in response.get("tokens", []))
        _CACHE[key] = tokens
        logs.event(_log, logs.OPENSEARCH_OPERATION, "OPENSEARCH_OPERATION", level=logging.DEBUG,
                   operation="analyze", index_name=self._index, term=term, tokens=len(tokens),
                   duration_ms=round((time.monotonic() - start) * 1000, 2))
        return tokens

    __call__ = tokens


def clear_cache() -> None:
    """Forget every cached term (tests only: an index recreated under the same name)."""
    _CACHE.clear()
