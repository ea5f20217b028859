"""The extract stage as a bounded pipeline, so S3, OpenSearch and PostgreSQL waits hide behind Tika.

    fetch thread ──► main thread ──► upload thread ──► index thread
    pages, claims,   Tika (the only  .txt upload,      BulkWriter (its flushes), every state
    GET to disk      Tika caller)    read the capped   write; a gazette succeeds only when its
                                     text, document    documents are acknowledged

Stages are joined by `Handoff`s. The first two hold gazettes as temp files (capacity 1 each), the
last holds index documents and is bounded by the memory of their texts (`index_queue_bytes`, at
least one gazette), so a slow bulk request lets the next batch of documents queue but never more
than that. A stage that dies closes every hand-off: its neighbours stop at their next step, and
the main thread re-raises the error, puts every claimed but unrecorded gazette back to pending
and lets the caller map it to an exit code, exactly as for SIGTERM (which arrives in the main
thread).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Generic, TypeVar

import psycopg2.extensions

from qd_core import statestore
from qd_core.states import ErrorClass, Stage
from qd_extractor.extract import Extractor, Fetched, GazetteError, Prepared

T = TypeVar("T")

#: Gazettes claimed per statement ahead of the download (an OOM kill leaves at most these 'running').
CLAIM_AHEAD = 8
#: Most gazettes on disk at once: one held by each of the fetch, main and upload threads, one in
#: each of the two hand-offs between them (each a temp dir of its source, then its text).
FILES_IN_FLIGHT = 5
#: How long a stopping pipeline waits for a worker in a network call before releasing without it.
STOP_GRACE_S = 20.0


class Closed(Exception):
    """The pipeline is stopping: the hand-off no longer accepts items."""


class Handoff(Generic[T]):
    """A bounded FIFO between two threads; `close` ends the stream, `abort` also drops what is queued.

    Bounded by a weight (items weigh 1 unless `weigh` says otherwise); one item is always accepted
    into an empty hand-off, so an item heavier than the bound still passes, alone.
    """

    def __init__(self, capacity: int, weigh: Callable[[T], int] = lambda _: 1) -> None:
        self._items: collections.deque[tuple[T, int]] = collections.deque()
        self._capacity = capacity
        self._weigh = weigh
        self._weight = 0
        self._cond = threading.Condition()
        self._closed = False
        self._aborted = False
        self.high_water = 0  #: the largest weight held at once (for tests and logs)

    def put(self, item: T) -> None:
        weight = self._weigh(item)
        with self._cond:
            while self._items and self._weight + weight > self._capacity and not self._closed:
                self._cond.wait()
            if self._closed:
                raise Closed
            self._items.append((item, weight))
            self._weight += weight
            self.high_water = max(self.high_water, self._weight)
            self._cond.notify_all()

    def get(self) -> T | None:
        """The next item; None once the stream is closed and drained, or aborted."""
        with self._cond:
            while not self._items and not self._closed:
                self._cond.wait()
            if self._aborted or not self._items:
                return None
            item, weight = self._items.popleft()
            self._weight -= weight
            self._cond.notify_all()
            return item

    @property
    def aborted(self) -> bool:
        return self._aborted

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def abort(self) -> list[T]:
        """Stop both sides now; return the items that were queued (the caller cleans them up)."""
        with self._cond:
            self._closed = self._aborted = True
            left = [item for item, _ in self._items]
            self._items.clear()
            self._weight = 0
            self._cond.notify_all()
            return left


@dataclasses.dataclass
class Failure:
    """A gazette that failed before indexing, on its way to be recorded in order."""

    row: Mapping[str, Any]
    error: ErrorClass
    message: str
    source_bytes: int | None = None
    #: The phases it went through, as for a success (`prepare_ms` includes the phase that failed).
    timings: dict[str, float] = dataclasses.field(default_factory=dict)


#: What reaches the index thread: a gazette ready to index, or one to record as failed.
Outcome = Prepared | Failure


def text_weight(item: Outcome) -> int:
    """Memory an item holds while queued for indexing: its document texts (1–4 bytes per character)."""
    if isinstance(item, Failure):
        return 1
    return 1024 + sum(sys.getsizeof(s.get("source_text", "")) for s in item.sources)


class Pipeline:
    """Runs the four stages over the rows of `pages`; `record` is the index thread's loop."""

    def __init__(self, extractor: Extractor, claim_conn: psycopg2.extensions.connection,
                 record_conn: psycopg2.extensions.connection, run_id: str, index_queue_bytes: int,
                 is_infrastructure: Callable[[BaseException], bool], classify: Callable[[Exception], ErrorClass],
                 logger: logging.Logger) -> None:
        self.extractor = extractor
        self.claim_conn = claim_conn
        self.record_conn = record_conn
        self.run_id = run_id
        self.is_infrastructure = is_infrastructure
        self.classify = classify
        self.log = logger
        self.fetched: Handoff[Fetched | Failure] = Handoff(1)
        self.texted: Handoff[Fetched | Failure] = Handoff(1)
        self.ready: Handoff[Outcome] = Handoff(index_queue_bytes, text_weight)
        self.attempts: dict[int, int] = {}
        self._unrecorded: set[int] = set()
        self._lock = threading.Lock()
        self._error: BaseException | None = None

    # -- bookkeeping shared by the threads -------------------------------------------------------

    def recorded(self, gazette_id: int) -> None:
        """The index thread wrote this gazette's final state: nothing to release for it any more."""
        with self._lock:
            self._unrecorded.discard(gazette_id)

    def _fail_all(self, err: BaseException) -> None:
        with self._lock:
            if self._error is None:
                self._error = err
        self._abort_handoffs()

    def _abort_handoffs(self) -> None:
        for handoff in (self.fetched, self.texted, self.ready):
            for item in handoff.abort():
                if isinstance(item, Fetched):
                    item.cleanup()

    def _thread(self, name: str, body: Callable[[], None]) -> threading.Thread:
        def guarded() -> None:
            try:
                body()
            except Closed:
                pass
            except BaseException as err:  # handed to the main thread, which re-raises it
                self._fail_all(err)

        thread = threading.Thread(target=guarded, name=f"qd-{name}", daemon=True)
        thread.start()
        return thread

    # -- the stages ------------------------------------------------------------------------------

    def run(self, pages: Iterable[list[dict[str, Any]]], record: Callable[[Handoff[Outcome]], None]) -> None:
        """Process every row; return when all are recorded, or raise what stopped the range."""
        threads = [self._thread("fetch", lambda: self._fetch(pages)), self._thread("upload", self._upload),
                   self._thread("index", lambda: record(self.ready))]
        try:
            try:
                self._text()
                for thread in threads:
                    thread.join()
            except Closed:
                pass  # a worker died and closed the hand-offs: its error is raised below
            if self._error is not None:
                raise self._error
        except BaseException:
            self._stop(threads)
            raise

    def _fetch(self, pages: Iterable[list[dict[str, Any]]]) -> None:
        for page in pages:
            for chunk in _chunks(page, CLAIM_AHEAD):
                ids = [int(row["id"]) for row in chunk]
                with self._lock:  # registered first: a claim interrupted half-way is still released
                    self._unrecorded.update(ids)
                self.attempts.update(statestore.claim_many(self.claim_conn, ids, Stage.EXTRACT, self.run_id))
                for row in chunk:  # a failed fetch's timings go in a fresh dict (a Fetched has its own)
                    self._put(self.fetched, self._guard(row, {}, "fetch", functools.partial(self.extractor.fetch, row)))
        self.fetched.close()

    @staticmethod
    def _put(handoff: Handoff[Fetched | Failure], item: Fetched | Failure) -> None:
        """Hand a gazette's files on, or delete them if the pipeline is stopping."""
        try:
            handoff.put(item)
        except BaseException:
            if isinstance(item, Fetched):
                item.cleanup()
            raise

    def _text(self) -> None:
        while (item := self.fetched.get()) is not None:
            if isinstance(item, Fetched):
                try:
                    result = self._guard(item.row, item.timings, "text", functools.partial(self.extractor.text, item))
                except BaseException:  # SIGTERM or Tika gone for good: this gazette's files go too
                    item.cleanup()
                    raise
                if isinstance(result, Failure):
                    item.cleanup()
                    self.texted.put(result)
                    continue
            self._put(self.texted, item)
        if self._error is not None:
            raise self._error
        self.texted.close()

    def _upload(self) -> None:
        while (item := self.texted.get()) is not None:
            if isinstance(item, Fetched):
                fetched = item
                try:
                    out = self._guard(item.row, item.timings, "finish", functools.partial(self.extractor.finish, item))
                finally:
                    item.cleanup()
                if isinstance(out, Prepared):
                    t = out.timings = fold_phases(out.timings)
                    t["queued_ms"] = (time.monotonic() - fetched.started) * 1000 - t["prepare_ms"]
                self.ready.put(out)
            else:
                self.ready.put(item)
        self.ready.close()

    def _guard(self, row: Mapping[str, Any], timings: dict[str, float], phase: str,
               work: Callable[[], T]) -> T | Failure:
        """One phase, timed even if it fails; the gazette's error becomes its Failure, an outage propagates."""
        started = time.monotonic()
        try:
            return work()
        except GazetteError as err:
            failure = Failure(row, err.error, str(err), err.source_bytes)
        except Exception as err:
            if self.is_infrastructure(err):
                raise
            failure = Failure(row, self.classify(err), f"{type(err).__name__}: {err}")
        finally:
            timings[f"{phase}_ms"] = (time.monotonic() - started) * 1000
        failure.timings = fold_phases(timings)
        return failure

    # -- stopping --------------------------------------------------------------------------------

    def _stop(self, threads: list[threading.Thread]) -> None:
        """Abort every stage, then put each claimed but unrecorded gazette back to pending."""
        self._abort_handoffs()
        deadline = time.monotonic() + STOP_GRACE_S
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        fetch, _, index = threads
        # Only a connection no live thread is using: the index thread's, else the fetch thread's.
        conn = self.record_conn if not index.is_alive() else self.claim_conn if not fetch.is_alive() else None
        with self._lock:
            left = sorted(self._unrecorded)
        if conn is None:
            self.log.error("workers still busy after %.0f s: %d gazettes stay 'running'", STOP_GRACE_S, len(left),
                           extra={"event_type": "shutdown"})
            return
        statestore.release_many(conn, left, Stage.EXTRACT)


def fold_phases(timings: dict[str, float]) -> dict[str, float]:
    """Timings as logged: the fetch, text and finish stages summed as `prepare_ms` (download, text, upload kept)."""
    t = dict(timings)
    t["prepare_ms"] = t.pop("fetch_ms", 0.0) + t.get("text_ms", 0.0) + t.pop("finish_ms", 0.0)
    return t


def _chunks(rows: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(rows), size):
        yield rows[i:i + size]
