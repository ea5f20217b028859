"""The extract stage over one id range: keyset pages, one gazette at a time, bulk indexing.

A gazette is finished only when every one of its documents is acknowledged by OpenSearch: then
its state and upstream's `processed` flag are written together. One gazette's error is recorded
and the range goes on; a service that is down stops the range with the gazettes in flight put back
to pending, so nothing is lost and no attempt is burned.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import time
from collections.abc import Iterator
from typing import Any

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from qd_core import statestore
from qd_core.selection import GAZETTE_COLUMNS
from qd_core.states import ErrorClass, Stage
from qd_extractor import logs
from qd_extractor.extract import Extractor, GazetteError, Prepared
from qd_extractor.search.bulk import BulkWriter, ItemResult
from qd_extractor.settings import ExtractorSettings


@dataclasses.dataclass
class Summary:
    """What a range run did (logged as `range_summary`, and the basis of the exit code)."""

    low: int
    high: int
    seen: int = 0
    succeeded: int = 0
    failed: int = 0
    terminal: int = 0
    documents: int = 0
    source_bytes: int = 0
    text_bytes: int = 0
    errors: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)


class RangeRunner:
    """Walks [low, high] newest first and drives the Extractor and the BulkWriter."""

    def __init__(self, settings: ExtractorSettings, read_conn: psycopg2.extensions.connection,
                 write_conn: psycopg2.extensions.connection, extractor: Extractor, writer: BulkWriter,
                 logger: logging.Logger) -> None:
        self.settings = settings
        self.read_conn = read_conn
        self.write = write_conn
        self.extractor = extractor
        self.writer = writer
        self.log = logger
        self.attempts: dict[int, int] = {}
        # Documents sent but not yet acknowledged, and which gazettes wait for them.
        self.waiting: dict[int, tuple[Prepared, set[str], list[ItemResult]]] = {}

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
        in_flight: int | None = None
        try:
            for page in self.pages(low, high):
                for row in page:
                    in_flight = int(row["id"])
                    self._one(row, summary)
                    in_flight = None
            self._absorb(self.writer.flush(), summary)
        except BaseException:
            # Anything that stops the range (SIGTERM, a service down): nothing in flight may stay
            # 'running' or be marked failed for it.
            for gid in [*([in_flight] if in_flight is not None else []), *self.waiting]:
                statestore.release(self.write, gid, Stage.EXTRACT)
            raise
        finally:
            logs.event(self.log, logs.RANGE_SUMMARY, "range finished", low=low, high=high, seen=summary.seen,
                       succeeded=summary.succeeded, failed=summary.failed, terminal=summary.terminal,
                       documents=summary.documents, source_bytes=summary.source_bytes,
                       text_bytes=summary.text_bytes, errors=dict(summary.errors))
        return summary

    def _one(self, row: dict[str, Any], summary: Summary) -> None:
        gid = int(row["id"])
        summary.seen += 1
        attempt = statestore.claim(self.write, gid, Stage.EXTRACT, self.settings.run_id)
        self.attempts[gid] = attempt
        started = time.monotonic()
        try:
            prepared = self.extractor.prepare(row)
        except GazetteError as err:
            self._failed(gid, err.error, str(err), summary, source_bytes=err.source_bytes)
            return
        except Exception as err:
            # A service error or a bug: recorded for this gazette only (transient), the range goes on.
            if _is_infrastructure(err):
                raise
            self._failed(gid, _classify(err), f"{type(err).__name__}: {err}", summary)
            return
        prepared.timings["prepare_ms"] = (time.monotonic() - started) * 1000
        summary.source_bytes += prepared.source_bytes
        summary.text_bytes += prepared.text_bytes
        if not prepared.sources:  # e.g. an association gazette with no identifier: nothing to index
            self._succeeded(prepared, summary)
            return
        self.waiting[gid] = (prepared, {d.doc_id for d in prepared.documents}, [])
        for doc, source in zip(prepared.documents, prepared.sources, strict=True):
            self._absorb(self.writer.add(self.settings.search_index, doc.doc_id, source), summary)

    def _absorb(self, results: list[ItemResult], summary: Summary) -> None:
        """Settle the gazettes whose last outstanding document was just acknowledged."""
        for result in results:
            for gid, (prepared, outstanding, done) in list(self.waiting.items()):
                if result.doc_id in outstanding:
                    outstanding.discard(result.doc_id)
                    done.append(result)
                    if not outstanding:
                        # Settle first: if we are interrupted meanwhile, the gazette is still
                        # 'waiting' and gets released to pending, never left 'running'.
                        self._settle(prepared, done, summary)
                        del self.waiting[gid]

    def _settle(self, prepared: Prepared, results: list[ItemResult], summary: Summary) -> None:
        failed = [r for r in results if not r.ok]
        if not failed:
            self._succeeded(prepared, summary)
            return
        rejected = all(r.status is not None and 400 <= r.status < 500 and r.status != 429 for r in failed)
        detail = "; ".join(f"{r.doc_id}: HTTP {r.status} {r.error}" for r in failed[:3])
        self._failed(int(prepared.row["id"]), ErrorClass.REJECTED if rejected else ErrorClass.SEARCH,
                     f"OpenSearch refused {len(failed)} document(s): {detail}", summary,
                     source_bytes=prepared.source_bytes)

    def _succeeded(self, prepared: Prepared, summary: Summary) -> None:
        statestore.succeed(self.write, dict(prepared.row), Stage.EXTRACT, source_bytes=prepared.source_bytes,
                           text_bytes=prepared.text_bytes, documents=prepared.documents)
        summary.succeeded += 1
        summary.documents += len(prepared.documents)
        logs.event(self.log, logs.GAZETTE_OUTCOME, "gazette processed", gazette_id=prepared.row["id"],
                   state="succeeded", file_path=prepared.row["file_path"], documents=len(prepared.documents),
                   source_bytes=prepared.source_bytes, text_bytes=prepared.text_bytes,
                   timings_ms={k: round(v, 1) for k, v in prepared.timings.items()})

    def _failed(self, gid: int, error: ErrorClass, message: str, summary: Summary, *,
                source_bytes: int | None = None) -> None:
        terminal = statestore.fail(self.write, gid, Stage.EXTRACT, error, message,
                                   attempts=self.attempts.get(gid, 1), max_attempts=self.settings.max_attempts,
                                   source_bytes=source_bytes)
        summary.failed += 1
        summary.terminal += int(terminal)
        summary.errors[error.value] += 1
        logs.event(self.log, logs.GAZETTE_OUTCOME, "Could not process gazette", level=logging.WARNING,
                   gazette_id=gid, state="failed", error_class=error.value, terminal=terminal, error=message)


def _is_infrastructure(err: BaseException) -> bool:
    """Errors that mean a service is down for everyone: stop the range rather than fail gazettes."""
    from qd_extractor import tika
    from qd_extractor.search.bulk import SearchUnavailableError

    return isinstance(err, psycopg2.OperationalError | psycopg2.InterfaceError | tika.TikaUnavailableError
                      | SearchUnavailableError)


def _classify(err: Exception) -> ErrorClass:
    from qd_extractor import storage

    if isinstance(err, storage.StorageError):
        return ErrorClass.STORAGE
    return ErrorClass.INTERNAL
