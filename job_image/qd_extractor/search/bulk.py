"""A memory-bounded `_bulk` writer with per-item results and retries.

Upstream indexes one document per request (4 attempts, 1/2/4 s sleeps) and refreshes per excerpt.
We batch instead, but keep per-document outcomes so the caller can mark exactly the gazettes whose
documents landed. Pending data is held as already-serialised NDJSON bytes and never exceeds
`max_bytes` plus the action being added (an action bigger than `max_bytes` is sent alone). While a
request is in flight its body is one joined copy of the batch, so plan about 2 x `max_bytes`.

Failures:
- item rejected with 429/502/503/504: only those items are re-sent, with exponential backoff + jitter,
  up to `max_retries` times; then reported failed.
- item rejected otherwise (e.g. 400 mapper_parsing_exception): reported failed at once.
- whole request rejected with a non-retriable HTTP status (e.g. 413): every item reported failed.
- transport failure (connection refused, timeout, 429/5xx for the whole request): the request is
  re-sent with backoff (on top of opensearch-py's own transport retries), then `SearchUnavailableError`.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import TransportError
from tenacity import (
    Retrying,
    retry_if_exception,
    retry_if_result,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from qd_extractor import logs

#: Item or request statuses worth retrying: overload (429) and gateway/availability errors.
RETRIABLE_STATUSES = frozenset({429, 502, 503, 504})


class SearchUnavailableError(Exception):
    """OpenSearch could not be reached (or kept refusing whole requests) after all retries.

    `pending` lists the (index, _id) of the flushed batch whose outcome is unknown (they may or may not
    be stored); `written` holds the results of items already confirmed by an earlier request of the same
    flush. Re-sending is safe: every write is a full overwrite or an idempotent partial update.
    """

    def __init__(self, message: str, pending: list[tuple[str, str]],
                 written: list[ItemResult] | None = None) -> None:
        super().__init__(message)
        self.pending = pending
        self.written = written or []


@dataclasses.dataclass(frozen=True)
class ItemResult:
    """Outcome of one action; `status` is the HTTP status OpenSearch gave the item."""

    doc_id: str
    ok: bool
    status: int
    error: str | None = None
    index: str = ""


@dataclasses.dataclass(frozen=True)
class _Action:
    index: str
    doc_id: str
    data: bytes  # action line + source line, both newline-terminated


def _transport_retriable(exc: BaseException) -> bool:
    if isinstance(exc, OSConnectionError):  # includes ConnectionTimeout
        return True
    return isinstance(exc, TransportError) and exc.status_code in RETRIABLE_STATUSES


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
        cause = error.get("caused_by")
        if isinstance(cause, dict):
            text += f" (caused by {cause.get('type')}: {cause.get('reason')})"
        return text
    return str(error)


class BulkWriter:
    """Accumulates index/update actions and sends them as `_bulk` requests bounded in bytes and count."""

    def __init__(self, client: OpenSearch, *, max_bytes: int, max_docs: int, max_retries: int,
                 backoff_base_s: float, logger: logging.Logger, refresh: bool = False,
                 backoff_max_s: float = 30.0) -> None:
        if max_bytes < 1 or max_docs < 1 or max_retries < 0 or backoff_base_s < 0:
            raise ValueError("max_bytes and max_docs must be >= 1, max_retries and backoff_base_s >= 0")
        self._client = client
        self._dumps = client.transport.serializer.dumps
        self._max_bytes = max_bytes
        self._max_docs = max_docs
        self._max_retries = max_retries
        # base, 2*base, 4*base... capped, plus up to one base of random jitter so Jobs do not retry in step.
        self._wait = wait_exponential(multiplier=backoff_base_s, max=backoff_max_s) + wait_random(0, backoff_base_s)
        self._log = logger
        self._refresh = refresh
        self._pending: list[_Action] = []
        self._pending_bytes = 0

    @property
    def pending_count(self) -> int:
        """Actions waiting for the next flush."""
        return len(self._pending)

    @property
    def pending_bytes(self) -> int:
        """Serialised size of the pending actions (what the next request body will hold)."""
        return self._pending_bytes

    def add(self, index: str, doc_id: str, source: dict[str, Any]) -> list[ItemResult]:
        """Queue a full-document `index` (overwrite); returns results of any flush this triggered."""
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
        if self._pending and (self._pending_bytes + len(data) > self._max_bytes
                              or len(self._pending) >= self._max_docs):
            results += self.flush()
        self._pending.append(_Action(index, doc_id, data))
        self._pending_bytes += len(data)
        if self._pending_bytes >= self._max_bytes or len(self._pending) >= self._max_docs:
            results += self.flush()  # full, or a single oversized action: send it alone now
        return results

    def flush(self, *, refresh: bool | None = None) -> list[ItemResult]:
        """Send everything pending; one result per action, in the order they were added."""
        if not self._pending:
            return []
        batch, self._pending, self._pending_bytes = self._pending, [], 0
        do_refresh = self._refresh if refresh is None else refresh
        results: dict[int, ItemResult] = {}
        todo = list(range(len(batch)))

        def attempt() -> list[int]:
            nonlocal todo
            todo = self._send_items(batch, todo, do_refresh, results)
            return todo

        try:
            Retrying(stop=stop_after_attempt(self._max_retries + 1), wait=self._wait, retry=retry_if_result(bool),
                     retry_error_callback=lambda state: state.outcome.result() if state.outcome else [])(attempt)
        except SearchUnavailableError as exc:
            written = [results[i] for i in sorted(results) if results[i].ok]
            unknown = [(a.index, a.doc_id) for i, a in enumerate(batch) if not (i in results and results[i].ok)]
            raise SearchUnavailableError(str(exc), unknown, written) from exc.__cause__
        out = [results[i] for i in range(len(batch))]
        for item in out:
            if not item.ok:
                logs.event(self._log, logs.OPENSEARCH_ERROR, "OPENSEARCH_ERROR", level=logging.ERROR,
                           operation="bulk", index_name=item.index, document_id=item.doc_id,
                           status=item.status, error_type=(item.error or "").split(":", 1)[0],
                           error_message=item.error)
        return out

    def _send_items(self, batch: list[_Action], todo: list[int], refresh: bool,
                    results: dict[int, ItemResult]) -> list[int]:
        """One bulk request for `todo`; fills `results` and returns the positions worth retrying."""
        body = b"".join(batch[i].data for i in todo)
        indices = ",".join(sorted({batch[i].index for i in todo}))
        start = time.monotonic()
        try:
            response = self._send(body, refresh, [(batch[i].index, batch[i].doc_id) for i in todo])
        except TransportError as exc:  # the whole request was refused for good (e.g. 400, 413)
            status = exc.status_code if isinstance(exc.status_code, int) else 0
            for i in todo:
                results[i] = ItemResult(batch[i].doc_id, False, status, _error_text(exc.error), batch[i].index)
            self._log_request(indices, len(todo), len(body), start, errors=len(todo))
            return []
        items = response.get("items", [])
        if len(items) != len(todo):
            raise RuntimeError(f"bulk response has {len(items)} items for {len(todo)} actions")
        retry: list[int] = []
        for i, wrapped in zip(todo, items, strict=True):
            item = next(iter(wrapped.values()))
            status = int(item.get("status", 0))
            action = batch[i]
            if 200 <= status < 300:
                results[i] = ItemResult(action.doc_id, True, status, None, action.index)
                continue
            results[i] = ItemResult(action.doc_id, False, status, _error_text(item.get("error")), action.index)
            if status in RETRIABLE_STATUSES:
                retry.append(i)
        self._log_request(indices, len(todo), len(body), start, errors=sum(not results[i].ok for i in todo))
        return retry

    def _send(self, body: bytes, refresh: bool, ids: list[tuple[str, str]]) -> dict[str, Any]:
        params = {"refresh": "true" if refresh else "false",
                  "filter_path": "errors,items.*._id,items.*.status,items.*.error"}
        retrying = Retrying(stop=stop_after_attempt(self._max_retries + 1), wait=self._wait,
                            retry=retry_if_exception(_transport_retriable), reraise=True)
        try:
            response: dict[str, Any] = retrying(self._client.bulk, body=body, params=params)
        except TransportError as exc:
            if _transport_retriable(exc):
                logs.event(self._log, logs.OPENSEARCH_ERROR, "OPENSEARCH_ERROR", level=logging.ERROR,
                           operation="bulk", index_name=",".join(sorted({i for i, _ in ids})),
                           count=len(ids), error_type=type(exc).__name__, error_message=str(exc))
                raise SearchUnavailableError(f"OpenSearch unavailable after {self._max_retries + 1} attempts: "
                                             f"{type(exc).__name__}: {exc}", ids) from exc
            raise
        return response

    def _log_request(self, indices: str, count: int, size: int, start: float, *, errors: int) -> None:
        logs.event(self._log, logs.OPENSEARCH_OPERATION, "OPENSEARCH_OPERATION", operation="bulk",
                   index_name=indices, count=count, bytes=size, errors=errors, success=errors == 0,
                   duration_ms=round((time.monotonic() - start) * 1000, 2))
