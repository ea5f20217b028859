"""Reading from OpenSearch in bounded pieces, and telling outages from bad requests.

Every read goes through `call`: an unreachable or overloaded cluster (after opensearch-py's own
transport retries) becomes `SearchUnavailableError`, which stops the range with the gazettes in
flight put back to pending (the CLI maps it to the "service unavailable" exit code). Any other
`TransportError` (a 400 for one batch) is left to the caller, which fails only the gazettes concerned.
`msearch` sends several searches in one request; an error item becomes the same exception a single
search would have raised (a retriable one is retried first), so callers handle both alike.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from opensearchpy import OpenSearch
from opensearchpy.exceptions import HTTP_EXCEPTIONS, TransportError
from opensearchpy.exceptions import ConnectionError as OSConnectionError

from qd_extractor import logs
from qd_extractor.excerpts.queries import ids_search
from qd_extractor.search.bulk import RETRIABLE_STATUSES, SearchUnavailableError

T = TypeVar("T")
_log = logging.getLogger("qd_extractor.excerpts")
#: Upstream's scroll keep-alive and scroll request timeout (seconds).
SCROLL_KEEP_ALIVE = "5m"
SCROLL_TIMEOUT_S = 120
#: Times an `_msearch` item refused as overload (429/50x) is sent again, after 1, 2, 4 s.
MSEARCH_RETRIES = 3


def batched(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most `size` items (itertools.batched is 3.12+)."""
    if size < 1:
        raise ValueError("batch size must be >= 1")
    for start in range(0, len(items), size):
        yield items[start:start + size]


def call(fn: Callable[..., Any], /, **kwargs: Any) -> dict[str, Any]:
    """Run one client call; outages become SearchUnavailableError, other errors pass through."""
    start = time.monotonic()
    try:
        response: dict[str, Any] = fn(**kwargs)
    except TransportError as exc:
        status = exc.status_code if isinstance(exc.status_code, int) else None
        outage = isinstance(exc, OSConnectionError) or status in RETRIABLE_STATUSES
        logs.event(_log, logs.OPENSEARCH_ERROR, "OPENSEARCH_ERROR", level=logging.ERROR,
                   operation=getattr(fn, "__name__", "request"), index_name=kwargs.get("index"), status=status,
                   error_type=type(exc).__name__, error_message=str(exc)[:500],
                   duration_ms=round((time.monotonic() - start) * 1000, 2))
        if outage:
            raise SearchUnavailableError(f"OpenSearch unavailable: {type(exc).__name__}: {exc}", []) from exc
        raise
    return response


def scroll_hits(client: OpenSearch, index: str, body: dict[str, Any], *,
                keep_alive: str = SCROLL_KEEP_ALIVE) -> Iterator[dict[str, Any]]:
    """Every hit of a scrolled search, page by page (`body["size"]` hits per page).

    Stops as soon as `hits.total` hits were read (upstream always asks for one more, empty, page)
    and always clears the scroll context, also when the consumer stops early.
    """
    response = call(client.search, index=index, body=body, scroll=keep_alive, request_timeout=SCROLL_TIMEOUT_S)
    scroll_id = response.get("_scroll_id")
    try:
        total = response["hits"].get("total")
        exact = total["value"] if isinstance(total, dict) and total.get("relation") == "eq" else None
        seen = 0
        while True:
            hits = response["hits"]["hits"]
            if not hits:
                return
            yield from hits
            seen += len(hits)
            if exact is not None and seen >= exact:
                return
            response = call(client.scroll, scroll_id=scroll_id, scroll=keep_alive, request_timeout=SCROLL_TIMEOUT_S)
            scroll_id = response.get("_scroll_id", scroll_id)
    finally:
        if scroll_id:
            try:
                client.clear_scroll(scroll_id=scroll_id)
            except TransportError:  # contexts expire on their own after the keep-alive
                _log.debug("could not clear a scroll context", exc_info=True)


def sources_by_ids(client: OpenSearch, index: str, ids: Sequence[str], fields: Sequence[str],
                   batch: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """(`_id`, filtered `_source`) of the documents among `ids`, one request per `batch` ids."""
    for chunk in batched(ids, batch):
        response = call(client.search, index=index, body=ids_search(chunk, fields))
        for hit in response["hits"]["hits"]:
            yield str(hit["_id"]), hit.get("_source") or {}


def msearch(client: OpenSearch, index: str, bodies: Sequence[dict[str, Any]], *,
            retries: int = MSEARCH_RETRIES, backoff_s: float = 1.0) -> list[dict[str, Any]]:
    """The responses of `bodies` run as one `_msearch` on `index`, in order.

    An item refused as overload is retried (only those items) up to `retries` times, then counts as
    an outage (SearchUnavailableError); any other error item raises the `TransportError` a single
    search would have raised (RequestError for a 400), for the caller to record.
    """
    results: list[dict[str, Any] | None] = [None] * len(bodies)
    todo = list(range(len(bodies)))
    for attempt in range(retries + 1):
        lines: list[dict[str, Any]] = []
        for i in todo:
            lines += [{}, bodies[i]]
        response = call(client.msearch, index=index, body=lines, request_timeout=SCROLL_TIMEOUT_S)
        items = response.get("responses") or []
        if len(items) != len(todo):
            raise TransportError(500, "msearch_response", f"{len(items)} responses for {len(todo)} searches")
        busy: list[int] = []
        for i, item in zip(todo, items, strict=True):
            if "error" not in item:
                results[i] = item
                continue
            status = item.get("status") if isinstance(item.get("status"), int) else 500
            error = item["error"]
            kind = str(error.get("type") if isinstance(error, dict) else error)
            logs.event(_log, logs.OPENSEARCH_ERROR, "OPENSEARCH_ERROR", level=logging.ERROR, operation="msearch",
                       index_name=index, status=status, error_type=kind, error_message=str(error)[:500],
                       item=i, attempt=attempt)
            if status not in RETRIABLE_STATUSES:
                raise HTTP_EXCEPTIONS.get(status, TransportError)(status, kind, item)
            busy.append(i)
        if not busy:
            return [r for r in results if r is not None]
        if attempt < retries:
            time.sleep(backoff_s * 2 ** attempt)
        todo = busy
    raise SearchUnavailableError(f"OpenSearch unavailable: {len(todo)} searches refused as overloaded", [])
