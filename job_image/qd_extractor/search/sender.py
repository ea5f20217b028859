"""One flushed batch through `_bulk`: item retries, transport retries, and recovery from read timeouts.

Why not `client.bulk`: opensearch-py's transport re-sends a timed-out request in full
(`retry_on_timeout`), and OpenSearch keeps working on a bulk request whose client has gone. A document
too heavy for the node (a 21 MB text with upstream's three term-vector fields ran a 512 MiB heap out of
memory) was therefore indexed twice at once, then again. Here each attempt is one HTTP request on the
client's connection, tagged with an `X-Opaque-Id`, and a request that timed out is never re-sent as is:

1. wait until OpenSearch has finished it (its task, found by the opaque id, is gone) so that at most
   one copy is ever being indexed; if the node stops answering meanwhile, the batch is
   `SearchUnavailableError` (outcome unknown, nothing is marked failed);
2. several items: send them again split around the byte midpoint, the item that straddles it alone,
   so an oversized document is isolated at the first split;
3. one item: try it once more; a second timeout (or a task still running after `drain_max_s`) reports
   it failed with HTTP status 408, a per-gazette error, instead of hammering the cluster;
4. more than `max_retries + 1` timeouts in a row mean the whole node is too slow: `SearchUnavailableError`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import time
import uuid
from typing import Any, NoReturn

from opensearchpy import OpenSearch, Urllib3HttpConnection
from opensearchpy.exceptions import ConnectionError as OSConnectionError
from opensearchpy.exceptions import ConnectionTimeout, TransportError

from qd_extractor import logs

#: Item or request statuses worth retrying: overload (429) and gateway/availability errors.
RETRIABLE_STATUSES = frozenset({429, 502, 503, 504})
#: Status reported for a document whose request timed out twice on its own (HTTP 408 Request Timeout).
TIMEOUT_STATUS = 408
_TASK_POLL_S = 0.25


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
class Action:
    index: str
    doc_id: str
    data: bytes  # action line + source line, both newline-terminated


@dataclasses.dataclass
class _Progress:
    """What one batch has learnt so far (a batch is handled by one thread at a time)."""

    results: dict[int, ItemResult] = dataclasses.field(default_factory=dict)
    timeouts_in_a_row: int = 0
    item_timeouts: dict[int, int] = dataclasses.field(default_factory=dict)


class _TimedOut(Exception):
    def __init__(self, opaque_id: str, cause: ConnectionTimeout) -> None:
        super().__init__(str(cause))
        self.opaque_id = opaque_id


def _transport_retriable(exc: TransportError) -> bool:
    return isinstance(exc, OSConnectionError) or exc.status_code in RETRIABLE_STATUSES


def _error_text(error: Any) -> str:
    if isinstance(error, dict):
        text = f"{error.get('type', 'error')}: {error.get('reason', '')}"
        cause = error.get("caused_by")
        if isinstance(cause, dict):
            text += f" (caused by {cause.get('type')}: {cause.get('reason')})"
        return text
    return str(error)


def split_at_byte_midpoint(sizes: list[int]) -> list[list[int]]:
    """Positions split into [before, straddling item, after] around half the bytes (empty parts dropped)."""
    half, total = sum(sizes) / 2, 0
    for k, size in enumerate(sizes):
        total += size
        if total >= half:
            return [part for part in (list(range(k)), [k], list(range(k + 1, len(sizes)))) if part]
    return [list(range(len(sizes)))]


class BatchSender:
    """Sends one batch to completion; thread-safe (no state between batches besides the client)."""

    def __init__(self, client: OpenSearch, *, max_retries: int, backoff_base_s: float, backoff_max_s: float,
                 logger: logging.Logger, timeout_s: float | None = None, drain_max_s: float | None = None) -> None:
        self._client = client
        self._max_retries = max_retries
        self._base, self._cap = backoff_base_s, backoff_max_s
        self._log = logger
        self._timeout_s = timeout_s  # None: the client's own request timeout
        self._drain_max_s = drain_max_s

    def backoff(self, attempt: int) -> float:
        """base, 2*base, 4*base… capped, plus up to one base of jitter so Jobs do not retry in step."""
        return float(min(self._base * 2 ** (attempt - 1), self._cap) + random.uniform(0, self._base))

    def send(self, batch: list[Action], refresh: bool) -> list[ItemResult]:
        """One result per action, in order; items refused with a retriable status are re-sent alone."""
        progress = _Progress()
        todo = list(range(len(batch)))
        try:
            for round_ in range(self._max_retries + 1):
                if round_:
                    time.sleep(self.backoff(round_))
                todo = self._send_items(batch, todo, refresh, progress)
                if not todo:
                    break
        except SearchUnavailableError as exc:
            done = progress.results
            written = [done[i] for i in sorted(done) if done[i].ok]
            unknown = [(a.index, a.doc_id) for i, a in enumerate(batch) if not (i in done and done[i].ok)]
            raise SearchUnavailableError(str(exc), unknown, written) from exc.__cause__
        return [progress.results[i] for i in range(len(batch))]

    def _send_items(self, batch: list[Action], todo: list[int], refresh: bool, progress: _Progress) -> list[int]:
        """One request for `todo` (more after a timeout); fills results, returns positions worth retrying."""
        parts = [batch[i].data for i in todo]
        size = sum(map(len, parts))
        indices = ",".join(sorted({batch[i].index for i in todo}))
        start = time.monotonic()
        try:
            response = self._request(parts, size, refresh, [(batch[i].index, batch[i].doc_id) for i in todo])
        except _TimedOut as timed_out:
            self._log_request(indices, len(todo), size, start, errors=len(todo), timed_out=True)
            return self._after_timeout(batch, todo, refresh, progress, timed_out.opaque_id, size)
        except TransportError as exc:  # the whole request was refused for good (e.g. 400, 413)
            status = exc.status_code if isinstance(exc.status_code, int) else 0
            for i in todo:
                progress.results[i] = ItemResult(batch[i].doc_id, False, status, _error_text(exc.error), batch[i].index)
            self._log_request(indices, len(todo), size, start, errors=len(todo))
            return []
        progress.timeouts_in_a_row = 0
        items = response.get("items", [])
        if len(items) != len(todo):
            raise RuntimeError(f"bulk response has {len(items)} items for {len(todo)} actions")
        retry: list[int] = []
        for i, wrapped in zip(todo, items, strict=True):
            item = next(iter(wrapped.values()))
            status = int(item.get("status", 0))
            action = batch[i]
            ok = 200 <= status < 300
            progress.results[i] = ItemResult(action.doc_id, ok, status,
                                             None if ok else _error_text(item.get("error")), action.index)
            if not ok and status in RETRIABLE_STATUSES:
                retry.append(i)
        self._log_request(indices, len(todo), size, start, errors=sum(not progress.results[i].ok for i in todo))
        return retry

    def _request(self, parts: list[bytes], size: int, refresh: bool, ids: list[tuple[str, str]]) -> dict[str, Any]:
        """POST /_bulk with backoff on connection errors and 429/5xx; a read timeout is never retried here."""
        params = {"refresh": "true" if refresh else "false",
                  "filter_path": "errors,items.*._id,items.*.status,items.*.error"}
        attempt = 0
        while True:
            attempt += 1
            opaque_id = f"qd-bulk-{uuid.uuid4().hex}"
            headers = {"content-type": "application/x-ndjson", "x-opaque-id": opaque_id}
            connection = self._client.transport.get_connection()
            # urllib3 sends the parts one after another (no joined copy of the body); gzip needs one buffer.
            streams = isinstance(connection, Urllib3HttpConnection) and not connection.http_compress
            body: Any = parts if streams else b"".join(parts)
            if streams:
                headers["content-length"] = str(size)
            try:
                _, response_headers, data = connection.perform_request(
                    "POST", "/_bulk", params, body, timeout=self._timeout_s, headers=headers)
                loaded: dict[str, Any] = self._client.transport.deserializer.loads(
                    data, {k.lower(): v for k, v in response_headers.items()}.get("content-type"))
                return loaded
            except ConnectionTimeout as exc:
                raise _TimedOut(opaque_id, exc) from exc
            except TransportError as exc:
                if not _transport_retriable(exc):
                    raise
                if attempt > self._max_retries:
                    self._unavailable(ids, exc, f"after {attempt} attempts")
                time.sleep(self.backoff(attempt))

    def _after_timeout(self, batch: list[Action], todo: list[int], refresh: bool, progress: _Progress,
                       opaque_id: str, size: int) -> list[int]:
        ids = [(batch[i].index, batch[i].doc_id) for i in todo]
        progress.timeouts_in_a_row += 1
        finished = self._wait_for_task(opaque_id, ids)
        logs.event(self._log, logs.OPENSEARCH_ERROR, "OPENSEARCH_ERROR", level=logging.WARNING, operation="bulk",
                   index_name=",".join(sorted({i for i, _ in ids})), count=len(todo), bytes=size,
                   error_type="ConnectionTimeout", task_finished=finished,
                   error_message="bulk request timed out; not re-sent as is")
        if progress.timeouts_in_a_row > self._max_retries + 1:
            self._unavailable(ids, None, f"{progress.timeouts_in_a_row} bulk requests in a row timed out")
        if len(todo) > 1:
            retry: list[int] = []
            for part in split_at_byte_midpoint([len(batch[i].data) for i in todo]):
                retry += self._send_items(batch, [todo[k] for k in part], refresh, progress)
            return retry
        i = todo[0]
        progress.item_timeouts[i] = progress.item_timeouts.get(i, 0) + 1
        if finished and progress.item_timeouts[i] < 2:
            return self._send_items(batch, todo, refresh, progress)
        why = "timed out twice on its own" if finished else f"still being indexed after {self._drain_max_s} s"
        progress.results[i] = ItemResult(batch[i].doc_id, False, TIMEOUT_STATUS,
                                         f"timeout: a {size}-byte bulk action {why}; not sent again",
                                         batch[i].index)
        return []

    def _wait_for_task(self, opaque_id: str, ids: list[tuple[str, str]]) -> bool:
        """Poll the tasks API until the timed-out request is no longer running; False after `drain_max_s`."""
        connection = self._client.transport.get_connection()
        limit = self._drain_max_s if self._drain_max_s is not None else float(getattr(connection, "timeout", 60))
        deadline = time.monotonic() + limit
        params = {"actions": "indices:data/write/bulk*", "detailed": "false"}
        while True:
            try:
                _, _, data = connection.perform_request("GET", "/_tasks", params, timeout=self._timeout_s)
            except TransportError as exc:
                self._unavailable(ids, exc, "while waiting for a timed-out bulk request to finish")
            nodes = json.loads(data).get("nodes", {})
            running = any(task.get("headers", {}).get("X-Opaque-Id") == opaque_id
                          for node in nodes.values() for task in node.get("tasks", {}).values())
            if not running:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(_TASK_POLL_S)

    def _unavailable(self, ids: list[tuple[str, str]], exc: TransportError | None, why: str) -> NoReturn:
        name = type(exc).__name__ if exc is not None else "ConnectionTimeout"
        logs.event(self._log, logs.OPENSEARCH_ERROR, "OPENSEARCH_ERROR", level=logging.ERROR, operation="bulk",
                   index_name=",".join(sorted({i for i, _ in ids})), count=len(ids), error_type=name,
                   error_message=str(exc) if exc is not None else why)
        raise SearchUnavailableError(f"OpenSearch unavailable {why}: {name}: {exc or ''}", ids) from exc

    def _log_request(self, indices: str, count: int, size: int, start: float, *, errors: int,
                     timed_out: bool = False) -> None:
        extra = {"timed_out": True} if timed_out else {}
        logs.event(self._log, logs.OPENSEARCH_OPERATION, "OPENSEARCH_OPERATION", operation="bulk",
                   index_name=indices, count=count, bytes=size, errors=errors, success=errors == 0,
                   duration_ms=round((time.monotonic() - start) * 1000, 2), **extra)
