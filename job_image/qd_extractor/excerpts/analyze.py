"""Term analysis through the gazette index's own analyzer: one request for every term, cached.

Upstream calls `_analyze` for every term of every query for every batch (about 671 calls per batch
for the two shipped themes, most of them repeats such as "lei federal"). A term's tokens depend only
on the index's analysis settings, so they are cached for the process (module-level, never evicted:
the shipped themes hold about 600 distinct terms), and `prefetch` analyses all the themes' distinct
terms at once: `_analyze` takes an array `text` and analyses each value on its own, exactly as a
single call would, returning one token stream whose offsets continue from value to value (each
value's start = the previous values' UTF-16 lengths plus one offset gap each). Tokens are assigned to
their term by those offsets. A sentinel value ends every batch and must come back as its own single
token (a different offset gap would shift it out of place); if it does not, or any token does not
fall inside one term, the batch answer is not trusted and the terms are analysed one by one instead.
Nothing is kept across processes, so an index recreated with other analysis settings is simply read
fresh by the next Job (one request per Job, so a cross-process cache would save at most that one).
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

from opensearchpy import OpenSearch

from qd_extractor import logs
from qd_extractor.excerpts import fetch
from qd_extractor.excerpts.queries import GAZETTE_FIELD

#: Most terms per batched `_analyze` request (the shipped themes' ~600 distinct terms fit in one;
#: the response is about 100 bytes per token).
ANALYZE_BATCH = 1000
#: Offset gap Lucene puts between the values of a multi-valued text field.
OFFSET_GAP = 1
#: Last value of every batch: digits, which every analyzer here keeps as one token spanning them.
SENTINEL = "20261130"

_CACHE: dict[tuple[str, str, str], tuple[str, ...]] = {}
_log = logging.getLogger("qd_extractor.excerpts")


class TermAnalyzer:
    """`tokens(term)`: the tokens OpenSearch produces for `term` in `index`'s `field`."""

    def __init__(self, client: OpenSearch, index: str, field: str = GAZETTE_FIELD) -> None:
        self._client = client
        self._index = index
        self._field = field
        #: `_analyze` requests this analyzer actually sent (batched or single).
        self.calls = 0

    def prefetch(self, terms: Iterable[str], *, batch: int = ANALYZE_BATCH) -> None:
        """Analyse every uncached term of `terms`, `batch` terms per request."""
        missing = list(dict.fromkeys(t for t in terms if (self._index, self._field, t) not in _CACHE))
        for chunk in fetch.batched(missing, batch):
            split = split_tokens([*chunk, SENTINEL], self._analyze([*chunk, SENTINEL]))
            if split is None or split[-1] != (SENTINEL,):
                logs.event(_log, "analyze_fallback", "batched _analyze offsets not understood; one term at a time",
                           level=logging.WARNING, index_name=self._index, terms=len(chunk))
                for term in chunk:
                    self.tokens(term)
                continue
            for term, tokens in zip(chunk, split[:-1], strict=True):
                _CACHE[(self._index, self._field, term)] = tokens

    def tokens(self, term: str) -> tuple[str, ...]:
        key = (self._index, self._field, term)
        cached = _CACHE.get(key)
        if cached is None:
            cached = _CACHE[key] = tuple(str(t["token"]) for t in self._analyze(term))
        return cached

    __call__ = tokens

    def _analyze(self, text: str | list[str]) -> list[dict[str, Any]]:
        start = time.monotonic()
        response = fetch.call(self._client.indices.analyze, index=self._index,
                              body={"text": text, "field": self._field})
        self.calls += 1
        tokens: list[dict[str, Any]] = list(response.get("tokens") or [])
        logs.event(_log, logs.OPENSEARCH_OPERATION, "OPENSEARCH_OPERATION", level=logging.DEBUG,
                   operation="analyze", index_name=self._index, terms=1 if isinstance(text, str) else len(text),
                   tokens=len(tokens), duration_ms=round((time.monotonic() - start) * 1000, 2))
        return tokens


def split_tokens(terms: Sequence[str], tokens: Sequence[dict[str, Any]]) -> list[tuple[str, ...]] | None:
    """Each term's tokens from one multi-valued `_analyze` answer, by offsets; None if they do not fit."""
    starts: list[int] = []
    ends: list[int] = []
    offset = 0
    for term in terms:
        starts.append(offset)
        offset += len(term.encode("utf-16-le")) // 2  # Lucene offsets count UTF-16 code units
        ends.append(offset)
        offset += OFFSET_GAP
    out: list[list[str]] = [[] for _ in terms]
    for token in tokens:
        begin, end = token.get("start_offset"), token.get("end_offset")
        if not isinstance(begin, int) or not isinstance(end, int):
            return None
        at = bisect.bisect_right(starts, begin) - 1
        if at < 0 or not (begin < end <= ends[at] or begin == end == ends[at]):
            return None
        out[at].append(str(token["token"]))
    return [tuple(t) for t in out]


def clear_cache() -> None:
    """Forget every cached term (tests and benchmarks: an index recreated under the same name)."""
    _CACHE.clear()
