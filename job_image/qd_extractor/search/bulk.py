"""A memory-bounded `_bulk` writer with per-item results, retries and a few requests in flight.

Upstream indexes one document per request (4 attempts, 1/2/4 s sleeps) and refreshes per excerpt.
We batch instead, but keep per-document outcomes so the caller can mark exactly the gazettes whose
documents landed. Pending data is held as already-serialised NDJSON bytes.

Memory: with `concurrency` c, a request holds at most `max_bytes / c` (an action bigger than that is
sent alone), and at most c - 1 requests stay in flight while the next one is built, so pending plus
in-flight NDJSON never exceeds `max_bytes` (plus one oversized action). Bodies are streamed from
the queued parts, never joined into a second copy.

Why c > 1: an index has one shard here, so one bulk request keeps one OpenSearch write thread busy
(analysing three term-vector fields dominates); a second request in flight uses another core, and the
caller keeps preparing documents (Tika, S3) instead of waiting. Requests are handed out in order,
and a request that touches an (index, _id) still in flight waits for it, so writes to one document
never overtake each other. Results of background requests are returned by a later `add`/`flush`.

Failures (see `sender.py`): items refused with 429/502/503/504 are re-sent alone with backoff, then
reported failed; other item errors (400 mapper_parsing_exception) fail at once; a whole request
refused for good (413) fails its items; connection errors and 429/5xx for the whole request are
retried, then `SearchUnavailableError`; a request that timed out is never re-sent as is.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import logging
import threading
from collections.abc import Callable
from typing import Any

from opensearchpy import OpenSearch

from qd_extractor import logs
from qd_extractor.search.sender import (
    RETRIABLE_STATUSES,
    TIMEOUT_STATUS,
    Action,
    BatchSender,
    ItemResult,
    SearchUnavailableError,
)

__all__ = ["RETRIABLE_STATUSES", "TIMEOUT_STATUS", "BulkWriter", "ItemResult", "SearchUnavailableError"]

#: Requests in flight when the caller does not say: 1 keeps the old synchronous behaviour for every
#: caller; the extract stage takes QD_BULK_CONCURRENCY (settings.py, default 2).
DEFAULT_CONCURRENCY = 1


def _run(future: concurrent.futures.Future[list[ItemResult]], send: Callable[..., list[ItemResult]],
         *args: Any) -> None:
    # A daemon thread per request, not a pool: a SIGTERM'd Job must not wait at exit for a request
    # whose gazettes it has already released (the next run re-sends them; writes are idempotent).
    try:
        future.set_result(send(*args))
    except BaseException as exc:  # handed to the caller's thread by future.result()
        future.set_exception(exc)


@dataclasses.dataclass(frozen=True)
class _InFlight:
    future: concurrent.futures.Future[list[ItemResult]]
    keys: frozenset[tuple[str, str]]
    size: int


class BulkWriter:
    """Accumulates index/update actions and sends them as `_bulk` requests bounded in bytes and count."""

    def __init__(self, client: OpenSearch, *, max_bytes: int, max_docs: int, max_retries: int,
                 backoff_base_s: float, logger: logging.Logger, refresh: bool = False,
                 backoff_max_s: float = 30.0, concurrency: int = DEFAULT_CONCURRENCY,
                 timeout_s: float | None = None, drain_max_s: float | None = None) -> None:
        if max_bytes < 1 or max_docs < 1 or max_retries < 0 or backoff_base_s < 0 or concurrency < 1:
            raise ValueError("max_bytes, max_docs and concurrency must be >= 1, max_retries and backoff_base_s >= 0")
        self._dumps = client.transport.serializer.dumps
        self._sender = BatchSender(client, max_retries=max_retries, backoff_base_s=backoff_base_s,
                                   backoff_max_s=backoff_max_s, logger=logger, timeout_s=timeout_s,
                                   drain_max_s=drain_max_s)
        self._request_bytes = max(1, max_bytes // concurrency)
        self._max_docs = max_docs
        self._concurrency = concurrency
        self._log = logger
        self._refresh = refresh
        self._pending: list[Action] = []
        self._pending_bytes = 0
        self._inflight: collections.deque[_InFlight] = collections.deque()

    @property
    def pending_count(self) -> int:
        """Actions waiting for the next request."""
        return len(self._pending)

    @property
    def pending_bytes(self) -> int:
        """Serialised size of the pending actions (what the next request body will hold)."""
        return self._pending_bytes

    @property
    def inflight_bytes(self) -> int:
        """Body bytes of requests sent in the background and not yet answered."""
        return sum(f.size for f in self._inflight)

    def add(self, index: str, doc_id: str, source: dict[str, Any]) -> list[ItemResult]:
        """Queue a full-document `index` (overwrite); returns results of any request finished meanwhile."""
        return self._queue(index, doc_id, "index", source)

    def partial_update(self, index: str, doc_id: str, fields: dict[str, Any]) -> list[ItemResult]:
        """Queue an `update` with `doc`: sets `fields`, leaves the rest (for scores written after indexing)."""
        return self._queue(index, doc_id, "update", {"doc": fields})

    def _encode(self, obj: Any) -> bytes:
        # The client's serializer, the same encoding the transport applies (dates -> ISO strings).
        return str(self._dumps(obj)).encode("utf-8", "surrogatepass")

    def _queue(self, index: str, doc_id: str, op: str, source: dict[str, Any]) -> list[ItemResult]:
        data = b"".join((self._encode({op: {"_index": index, "_id": doc_id}}), b"\n", self._encode(source), b"\n"))
        results: list[ItemResult] = []
        if self._pending and (self._pending_bytes + len(data) > self._request_bytes
                              or len(self._pending) >= self._max_docs):
            results += self._dispatch()
        self._pending.append(Action(index, doc_id, data))
        self._pending_bytes += len(data)
        if self._pending_bytes >= self._request_bytes or len(self._pending) >= self._max_docs:
            results += self._dispatch()  # full, or a single oversized action: send it alone now
        results += self._collect(block_while_more_than=None)
        return results

    def flush(self, *, refresh: bool | None = None) -> list[ItemResult]:
        """Send everything pending and wait for every request in flight; one result per action.

        Results come in the order requests finish (in add order when `concurrency` is 1). The last
        request goes out after all others have finished, so `refresh` covers the whole flush.
        """
        results = self._collect(block_while_more_than=0)
        if self._pending:
            batch, self._pending, self._pending_bytes = self._pending, [], 0
            results += self._finish(self._sender.send, batch, self._refresh if refresh is None else refresh)
        return results

    def _dispatch(self) -> list[ItemResult]:
        """Send the pending batch: synchronously when concurrency is 1, else in the background."""
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        if self._concurrency == 1:
            return self._finish(self._sender.send, batch, self._refresh)
        keys = frozenset((a.index, a.doc_id) for a in batch)
        results = self._collect(block_while_more_than=None, before=keys)
        future: concurrent.futures.Future[list[ItemResult]] = concurrent.futures.Future()
        threading.Thread(target=_run, args=(future, self._sender.send, batch, self._refresh),
                         name="qd-bulk", daemon=True).start()
        self._inflight.append(_InFlight(future, keys, sum(len(a.data) for a in batch)))
        # All c run together while the caller waits here; c - 1 stay in flight while it builds the next one.
        return results + self._collect(block_while_more_than=self._concurrency - 1)

    def _collect(self, *, block_while_more_than: int | None,
                 before: frozenset[tuple[str, str]] | None = None) -> list[ItemResult]:
        """Results of finished requests, oldest first.

        Waits while more than N are in flight or one of them writes a key in `before`. A failed
        request waits for all others, then raises.
        """
        results: list[ItemResult] = []
        while self._inflight:
            head = self._inflight[0]
            must_wait = ((block_while_more_than is not None and len(self._inflight) > block_while_more_than)
                         or (before is not None and any(not f.keys.isdisjoint(before) for f in self._inflight)))
            if not must_wait and not head.future.done():
                break
            self._inflight.popleft()
            try:
                results += self._finish(head.future.result)
            except SearchUnavailableError as exc:
                raise self._fail_all(exc, results) from exc
        return results

    def _fail_all(self, exc: SearchUnavailableError, done: list[ItemResult]) -> SearchUnavailableError:
        """Wait for the other requests in flight; everything not confirmed is pending (outcome unknown)."""
        pending, written = list(exc.pending), [*done, *exc.written]
        while self._inflight:
            other = self._inflight.popleft()
            try:
                written += other.future.result()
            except SearchUnavailableError as more:
                pending += more.pending
                written += more.written
        pending += [(a.index, a.doc_id) for a in self._pending]
        self._pending, self._pending_bytes = [], 0
        return SearchUnavailableError(str(exc), pending, written)

    def _finish(self, send: Callable[..., list[ItemResult]], *args: Any) -> list[ItemResult]:
        out = send(*args)
        for item in out:
            if not item.ok:
                logs.event(self._log, logs.OPENSEARCH_ERROR, "OPENSEARCH_ERROR", level=logging.ERROR,
                           operation="bulk", index_name=item.index, document_id=item.doc_id,
                           status=item.status, error_type=(item.error or "").split(":", 1)[0],
                           error_message=item.error)
        return out
