"""The extract stage over one id range: keyset pages, a bounded pipeline of gazettes, bulk indexing.

A gazette is finished only when every one of its documents is acknowledged by OpenSearch: then
its state and upstream's `processed` flag are written together (one transaction per bulk request).
One gazette's error is recorded and the range goes on; a service that is down stops the range with
the gazettes in flight put back to pending, so nothing is lost and no attempt is burned.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from qd_core import statestore
from qd_core.selection import GAZETTE_COLUMNS
from qd_core.states import ErrorClass, Stage
from qd_extractor import logs
from qd_extractor.extract import Extractor, Prepared
from qd_extractor.pipeline import Failure, Handoff, Outcome, Pipeline
from qd_extractor.search.bulk import BulkWriter, ItemResult
from qd_extractor.settings import ExtractorSettings
from qd_extractor.summary import RangeSummary, Timings, rounded_ms

#: The phases every `range_summary` reports, even when no gazette went through them.
PHASES = ("download_ms", "text_ms", "upload_ms", "prepare_ms", "queued_ms", "bulk_ms")


@dataclasses.dataclass
class Summary(RangeSummary):
    """What an extract range run did (logged as `range_summary`, and the basis of the exit code).

    `timings_ms` sums each phase over every gazette recorded (succeeded or failed), plus `bulk_ms`:
    the index thread's time in the bulk writer (building requests and waiting for OpenSearch).
    """

    source_bytes: int = 0
    text_bytes: int = 0
    tika_requests: int = 0  #: HTTP requests to Tika, retries included
    tika_failures: int = 0  #: extractions Tika refused or could not serve after its retries
    timings_ms: Timings = dataclasses.field(default_factory=lambda: Timings(PHASES))


class RangeRunner:
    """Walks [low, high] newest first through the `Pipeline`; its index thread runs `_record`."""

    def __init__(self, settings: ExtractorSettings, read_conn: psycopg2.extensions.connection,
                 write_conn: psycopg2.extensions.connection, extractor: Extractor, writer: BulkWriter,
                 logger: logging.Logger) -> None:
        self.settings = settings
        self.read_conn = read_conn  # the fetch thread's: pages and claims
        self.write = write_conn  # the index thread's: every outcome
        self.extractor = extractor
        self.writer = writer
        self.log = logger
        self.pipeline: Pipeline | None = None
        # Documents sent but not yet acknowledged, and which gazettes wait for them.
        self.waiting: dict[int, tuple[Prepared, set[str], list[ItemResult]]] = {}
        self._by_doc: dict[str, list[int]] = {}

    def pages(self, low: int, high: int) -> Iterator[list[dict[str, Any]]]:
        """Keyset pages through a server-side cursor with a bounded fetch size."""
        before: int | None = None
        while True:
            run = None if self.settings.run_id == "manual" else self.settings.run_id
            sql, params = self.settings.selection.page_sql(low=low, high=high, before=before,
                                                           limit=self.settings.page_size, run_id=run)
            with self.read_conn, self.read_conn.cursor(name="qd_page") as cur:
                cur.itersize = self.settings.fetch_size
                cur.execute(sql, params)
                page = [dict(zip(GAZETTE_COLUMNS, row, strict=True)) for row in cur]
            if not page:
                return
            yield page
            before = int(page[-1]["id"])

    def run(self, low: int, high: int) -> Summary:
        summary = Summary(low, high)
        # Documents of the next bulk request may queue while one is in flight: one more bulk's worth.
        self.pipeline = Pipeline(self.extractor, self.read_conn, self.write, self.settings.run_id,
                                 self.settings.budget.bulk_bytes, _is_infrastructure, _classify, self.log)
        try:
            self.pipeline.run(self.pages(low, high), lambda ready: self._record(ready, summary))
        finally:
            summary.tika_requests, summary.tika_failures = self.extractor.tika.requests, self.extractor.tika.failures
            logs.event(self.log, logs.RANGE_SUMMARY, "range finished", **summary.log_fields())
        return summary

    def _record(self, ready: Handoff[Outcome], summary: Summary) -> None:
        """The index thread: outcomes in order; documents through the BulkWriter; states when settled."""
        while (item := ready.get()) is not None:
            summary.seen += 1
            if isinstance(item, Failure):
                self._failed(int(item.row["id"]), item.error, item.message, summary, source_bytes=item.source_bytes,
                             timings=item.timings)
                continue
            summary.source_bytes += item.source_bytes
            summary.text_bytes += item.text_bytes
            if not item.sources:  # e.g. an association gazette with no identifier: nothing to index
                self._succeeded([item], summary)
                continue
            gid = int(item.row["id"])
            self.waiting[gid] = (item, {d.doc_id for d in item.documents}, [])
            for doc in item.documents:
                self._by_doc.setdefault(doc.doc_id, []).append(gid)
            sources, item.sources = item.sources, []  # from here on only the writer's NDJSON holds the text
            for doc in item.documents:
                self._absorb(self._timed_bulk(summary, self.writer.add, self.settings.search_index, doc.doc_id,
                                              sources.pop(0)), summary)
        if ready.aborted:
            return  # stopping: what was not acknowledged goes back to pending, not to OpenSearch
        self._absorb(self._timed_bulk(summary, self.writer.flush), summary)

    @staticmethod
    def _timed_bulk(summary: Summary, call: Callable[..., list[ItemResult]], *args: Any) -> list[ItemResult]:
        started = time.monotonic()
        try:
            return call(*args)
        finally:
            summary.timings_ms.add({"bulk_ms": (time.monotonic() - started) * 1000})

    def _absorb(self, results: list[ItemResult], summary: Summary) -> None:
        """Settle, in one transaction, the gazettes whose last outstanding document was just acknowledged."""
        settled: list[tuple[Prepared, list[ItemResult]]] = []
        for result in results:
            for gid in self._by_doc.pop(result.doc_id, []):
                prepared, outstanding, done = self.waiting[gid]
                outstanding.discard(result.doc_id)
                done.append(result)
                if not outstanding:
                    settled.append((prepared, done))
        ok: list[Prepared] = []
        refused: list[tuple[Prepared, list[ItemResult]]] = []
        for prepared, done in settled:
            failed = [r for r in done if not r.ok]
            if failed:
                refused.append((prepared, failed))
            else:
                ok.append(prepared)
        self._succeeded(ok, summary)
        for prepared, failed in refused:
            rejected = all(r.status is not None and 400 <= r.status < 500 and r.status != 429 for r in failed)
            detail = "; ".join(f"{r.doc_id}: HTTP {r.status} {r.error}" for r in failed[:3])
            self._failed(int(prepared.row["id"]), ErrorClass.REJECTED if rejected else ErrorClass.SEARCH,
                         f"OpenSearch refused {len(failed)} document(s): {detail}", summary,
                         source_bytes=prepared.source_bytes, timings=prepared.timings)
        # Forgotten only once recorded: if we are interrupted meanwhile, they are released to pending.
        for prepared, _ in settled:
            self.waiting.pop(int(prepared.row["id"]), None)

    def _succeeded(self, prepared: list[Prepared], summary: Summary) -> None:
        if not prepared:
            return
        statestore.succeed_many(self.write, [
            statestore.Success(dict(p.row), p.source_bytes, p.text_bytes, p.documents) for p in prepared],
            Stage.EXTRACT)
        for p in prepared:
            self._recorded(int(p.row["id"]))
            summary.succeeded += 1
            summary.documents += len(p.documents)
            summary.timings_ms.add(p.timings)
            logs.event(self.log, logs.GAZETTE_OUTCOME, "gazette processed", gazette_id=p.row["id"],
                       state="succeeded", file_path=p.row["file_path"], documents=len(p.documents),
                       source_bytes=p.source_bytes, text_bytes=p.text_bytes,
                       timings_ms=rounded_ms(p.timings))

    def _failed(self, gid: int, error: ErrorClass, message: str, summary: Summary, *,
                source_bytes: int | None = None, timings: dict[str, float]) -> None:
        attempts = self.pipeline.attempts.get(gid, 1) if self.pipeline is not None else 1
        terminal = statestore.fail(self.write, gid, Stage.EXTRACT, error, message, attempts=attempts,
                                   max_attempts=self.settings.max_attempts, source_bytes=source_bytes)
        self._recorded(gid)
        summary.record_failure(error, terminal)
        summary.timings_ms.add(timings)
        logs.event(self.log, logs.GAZETTE_OUTCOME, "Could not process gazette", level=logging.WARNING,
                   gazette_id=gid, state="failed", error_class=error.value, terminal=terminal, error=message,
                   timings_ms=rounded_ms(timings))

    def _recorded(self, gid: int) -> None:
        if self.pipeline is not None:
            self.pipeline.recorded(gid)


def _is_infrastructure(err: BaseException) -> bool:
    """Errors that mean a service is down for everyone: stop the range rather than fail gazettes."""
    from qd_extractor import tika
    from qd_extractor.search.bulk import SearchUnavailableError
    from qd_extractor.storage import StorageUnavailableError

    return isinstance(err, psycopg2.OperationalError | psycopg2.InterfaceError | tika.TikaUnavailableError
                      | SearchUnavailableError | StorageUnavailableError)


def _classify(err: Exception) -> ErrorClass:
    from qd_extractor import storage

    if isinstance(err, storage.StorageError):
        return ErrorClass.STORAGE
    return ErrorClass.INTERNAL
