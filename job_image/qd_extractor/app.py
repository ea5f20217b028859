"""Wiring: settings → connections and clients → the stage runner. The only module that does all I/O setup."""

from __future__ import annotations

import functools
import logging
from typing import Any

import psycopg2
import psycopg2.extensions

from qd_core import db
from qd_extractor import logs, storage, tika
from qd_extractor.extract import Extractor
from qd_extractor.runner import RangeRunner, Summary
from qd_extractor.search import bulk, client, mappings
from qd_extractor.segmentation.territories import TerritoryIndex
from qd_extractor.settings import ExtractorSettings

#: Errors that mean "a service is down": the CLI exits with EXIT_INFRA on them.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    psycopg2.OperationalError, psycopg2.InterfaceError, tika.TikaUnavailableError, bulk.SearchUnavailableError,
    storage.StorageError,
)


def load_settings() -> ExtractorSettings:
    return ExtractorSettings.from_env()


def connect(settings: ExtractorSettings, name: str) -> psycopg2.extensions.connection:
    return settings.database.connect_with_retries(name)


def migrate(settings: ExtractorSettings) -> list[str]:
    conn = connect(settings, "qd-extract-migrate")
    try:
        return db.migrate(conn)
    finally:
        conn.close()


def search_settings(settings: ExtractorSettings) -> client.SearchSettings:
    return client.SearchSettings(host=settings.search_host, index=settings.search_index,
                                 user=settings.search_user, password=settings.search_password)


def _territories(conn: psycopg2.extensions.connection) -> TerritoryIndex:
    # Upstream reads `SELECT * FROM territories` and maps columns by position.
    with conn, conn.cursor() as cur:
        cur.execute("SELECT * FROM territories")
        rows: list[Any] = cur.fetchall()
    return TerritoryIndex.from_rows(rows)


def _territories_once(settings: ExtractorSettings) -> TerritoryIndex:
    # Its own short connection: the pipeline's threads each own one of the others.
    conn = connect(settings, "qd-extract-territories")
    try:
        return _territories(conn)
    finally:
        conn.close()


def run_extract(settings: ExtractorSettings, low: int, high: int, log: logging.Logger) -> Summary:
    """Run the extract stage over [low, high]."""
    logs.event(log, "startup", "extract stage starting", low=low, high=high, run_id=settings.run_id,
               memory_limit=settings.budget.limit, memory_limit_source=settings.budget_source,
               mode=settings.selection.mode.value)
    read_conn = connect(settings, "qd-extract-read")
    write_conn = connect(settings, "qd-extract-write")
    try:
        db.migrate(write_conn)
        search = client.make_client(search_settings(settings))
        client.ensure_index(search, settings.search_index, mappings.gazette_index_body())
        budget = settings.budget
        store = storage.Storage(settings.storage, part_size=budget.part_size, io_chunk=budget.io_chunk)
        tika_client = tika.TikaClient(settings.tika, io_chunk=budget.io_chunk, logger=log)
        extractor = Extractor(settings, store, tika_client, functools.cache(lambda: _territories_once(settings)), log)
        # QD_BULK_CONCURRENCY requests in flight share bulk_bytes, so the pipeline's index thread keeps
        # adding documents while OpenSearch indexes the previous batch.
        writer = bulk.BulkWriter(search, max_bytes=budget.bulk_bytes, max_docs=settings.bulk_max_docs, max_retries=5,
                                 backoff_base_s=1.0, logger=log, concurrency=settings.bulk_concurrency)
        runner = RangeRunner(settings, read_conn, write_conn, extractor, writer, log)
        return runner.run(low, high)
    finally:
        read_conn.close()
        write_conn.close()
