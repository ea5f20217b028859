"""Excerpt writes through the bounded BulkWriter, remembering which items failed.

Upstream re-indexed every excerpt with `refresh=True`, one request and one refresh per document,
three times over (extraction, rerank, each entity case). Here writes are batched and an index is
refreshed only where a later step must search what was just written: once after a batch's
extraction, once between two entity-tagging rounds (entities.py). When every write since the last
refresh is still waiting in the writer, that refresh rides on the `_bulk` request that sends them
(`refresh=true` refreshes the shards the request wrote to, which then hold every unrefreshed write);
otherwise an explicit `_refresh` of the written indexes follows.
"""

from __future__ import annotations

from typing import Any

from opensearchpy import OpenSearch

from qd_extractor.excerpts import fetch
from qd_extractor.search.bulk import BulkWriter, ItemResult


class TrackedWriter:
    """`index`/`update`/`flush` over a BulkWriter; failed items are kept by document id."""

    def __init__(self, writer: BulkWriter, client: OpenSearch) -> None:
        self._writer = writer
        self._client = client
        self._dirty: set[str] = set()
        self._unrefreshed = 0  # writes queued since the last refresh
        #: Items OpenSearch refused (after the writer's retries), by `_id`, until `take_failed()`.
        self.failed: dict[str, ItemResult] = {}
        #: Items acknowledged since this writer was made.
        self.acknowledged = 0

    def index(self, index: str, doc_id: str, source: dict[str, Any]) -> None:
        """Full overwrite (an excerpt re-extracted loses its score and entities, as upstream)."""
        self._dirty.add(index)
        self._unrefreshed += 1
        self._absorb(self._writer.add(index, doc_id, source))

    def update(self, index: str, doc_id: str, fields: dict[str, Any]) -> None:
        """Partial update: only `fields` change."""
        self._dirty.add(index)
        self._unrefreshed += 1
        self._absorb(self._writer.partial_update(index, doc_id, fields))

    def flush(self, *, refresh: bool = False) -> None:
        """Send what is pending; with `refresh`, make every index written since the last refresh searchable."""
        ride = refresh and self._dirty and 0 < self._writer.pending_count == self._unrefreshed
        self._absorb(self._writer.flush(refresh=bool(ride)))
        if refresh and self._dirty and not ride:
            fetch.call(self._client.indices.refresh, index=",".join(sorted(self._dirty)))
        if refresh:
            self._dirty.clear()
            self._unrefreshed = 0

    def take_failed(self) -> dict[str, ItemResult]:
        failed, self.failed = self.failed, {}
        return failed

    def _absorb(self, results: list[ItemResult]) -> None:
        for result in results:
            if result.ok:
                self.acknowledged += 1
            else:
                self.failed[result.doc_id] = result
