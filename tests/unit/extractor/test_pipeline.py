"""The extract pipeline with fake services: bounded, overlapping, succeeded only after the ack, stoppable.

The state-store calls are replaced by recorders writing into one shared event log, so the order of
what happened across the threads can be asserted; synchronisation is by events, never by sleeping.
"""

from __future__ import annotations

import threading
import types
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from qd_core import statestore
from qd_core.states import ErrorClass, Stage
from qd_extractor import pipeline as pl
from qd_extractor.extract import Fetched, GazetteError, Prepared
from qd_extractor.runner import RangeRunner
from qd_extractor.search.bulk import ItemResult, SearchUnavailableError
from qd_extractor.settings import ExtractorSettings
from qd_extractor.tika import TikaUnavailableError

WAIT = 10.0  # generous bound on an Event wait; reached only when the code under test is broken

ENV = {"POSTGRES_HOST": "127.0.0.1", "POSTGRES_DB": "x", "POSTGRES_USER": "x", "POSTGRES_PASSWORD": "x",
       "STORAGE_BUCKET": "b", "APACHE_TIKA_SERVER": "http://127.0.0.1:1", "OPENSEARCH_HOST": "http://127.0.0.1:2",
       "OPENSEARCH_INDEX": "idx", "QUERIDO_DIARIO_FILES_ENDPOINT": "files", "MEMORY_LIMIT_BYTES": str(256 << 20)}


class Stop(BaseException):
    """What the SIGTERM handler raises in the main thread (cli._Terminated), stood in for here."""


class Log:
    """One ordered log of what every thread did."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.items: list[tuple[str, int]] = []

    def add(self, what: str, gid: int) -> None:
        with self.lock:
            self.items.append((what, gid))

    def ids(self, what: str) -> list[int]:
        return [g for w, g in self.items if w == what]

    def first(self, what: str, gid: int) -> int:
        return self.items.index((what, gid))


class FakeExtractor:
    """Temp dirs for real (so files in flight can be counted), no services."""

    def __init__(self, tmp: Path, log: Log, *, fetch_errors: dict[int, Exception] | None = None,
                 text_errors: dict[int, BaseException] | None = None) -> None:
        self.tmp, self.log = tmp, log
        self.fetch_errors, self.text_errors = fetch_errors or {}, text_errors or {}
        self.max_on_disk = 0
        self.fetch_started: dict[int, threading.Event] = {}
        self.gate: dict[int, threading.Event] = {}  # text(gid) waits for this before returning
        self.tika = types.SimpleNamespace(requests=0, failures=0)  # the counters the range summary reads

    def on_disk(self) -> int:
        return sum(1 for _ in self.tmp.iterdir())

    def fetch(self, row: dict[str, Any]) -> Fetched:
        gid = int(row["id"])
        self.fetch_started.setdefault(gid, threading.Event()).set()
        self.log.add("fetch", gid)
        if gid in self.fetch_errors:
            raise self.fetch_errors[gid]
        d = self.tmp / f"g{gid}"
        d.mkdir()
        (d / "source").write_bytes(b"%PDF")
        self.max_on_disk = max(self.max_on_disk, self.on_disk())
        return Fetched(row, d, 4, "application/pdf", {"download_ms": 1.0, "fetch_ms": 1.0})

    def text(self, fetched: Fetched) -> None:
        gid = int(fetched.row["id"])
        self.log.add("text", gid)
        if gid in self.gate:
            assert self.gate[gid].wait(WAIT), f"gate of {gid} never opened"
        if gid in self.text_errors:
            raise self.text_errors[gid]
        fetched.txt.write_text(f"text {gid}")
        fetched.src.unlink()

    def finish(self, fetched: Fetched) -> Prepared:
        gid = int(fetched.row["id"])
        self.log.add("upload", gid)
        doc = statestore.Document(f"d{gid}", "1", f"{gid}.txt", 7)
        return Prepared(fetched.row, [doc], [{"file_checksum": f"d{gid}", "source_text": f"text {gid}"}], 4, 7,
                        dict(fetched.timings))


class FakeWriter:
    """A BulkWriter stand-in: flushes every `every` documents; `reject` items fail with 400."""

    def __init__(self, log: Log, every: int = 3, reject: Sequence[str] = (),
                 down_after: int | None = None) -> None:
        self.log, self.every, self.reject, self.down_after = log, every, set(reject), down_after
        self.pending: list[str] = []
        self.flushes = 0

    def add(self, index: str, doc_id: str, source: dict[str, Any]) -> list[ItemResult]:
        self.pending.append(doc_id)
        return self.flush() if len(self.pending) >= self.every else []

    def flush(self) -> list[ItemResult]:
        self.flushes += 1
        if self.down_after is not None and self.flushes > self.down_after:
            raise SearchUnavailableError("down", [("idx", d) for d in self.pending])
        batch, self.pending = self.pending, []
        out = []
        for doc_id in batch:
            ok = doc_id not in self.reject
            self.log.add("ack" if ok else "nack", int(doc_id[1:]))
            out.append(ItemResult(doc_id, ok, 201 if ok else 400, None if ok else "mapper_parsing_exception"))
        return out


@pytest.fixture()
def log(monkeypatch: pytest.MonkeyPatch) -> Log:
    """Every state write goes to the log instead of PostgreSQL."""
    events = Log()

    def claim_many(conn: Any, ids: Sequence[int], stage: Stage, run_id: str) -> dict[int, int]:
        for g in ids:
            events.add("claim", g)
        return {g: 1 for g in ids}

    def succeed_many(conn: Any, successes: Sequence[statestore.Success], stage: Stage, **_: Any) -> None:
        for s in successes:
            events.add("succeed", int(s.gazette["id"]))

    def fail(conn: Any, gid: int, stage: Stage, error: ErrorClass, message: str, **_: Any) -> bool:
        events.add(f"fail:{error.value}", gid)
        return False

    def release_many(conn: Any, ids: Sequence[int], stage: Stage) -> None:
        for g in ids:
            events.add("release", g)

    monkeypatch.setattr(statestore, "claim_many", claim_many)
    monkeypatch.setattr(statestore, "succeed_many", succeed_many)
    monkeypatch.setattr(statestore, "fail", fail)
    monkeypatch.setattr(statestore, "release_many", release_many)
    return events


def rows(n: int) -> list[dict[str, Any]]:
    return [{"id": 100 - i, "file_path": f"{100 - i}.pdf", "file_checksum": f"d{100 - i}"} for i in range(n)]


def runner(tmp: Path, extractor: FakeExtractor, writer: FakeWriter, pages: list[list[dict[str, Any]]],
           monkeypatch: pytest.MonkeyPatch) -> RangeRunner:
    import logging

    settings = ExtractorSettings.from_env(ENV)
    r = RangeRunner(settings, object(), object(), extractor, writer, logging.getLogger("test"))  # type: ignore[arg-type]

    def fake_pages(low: int, high: int) -> Iterator[list[dict[str, Any]]]:
        yield from pages

    monkeypatch.setattr(r, "pages", fake_pages)
    return r


def test_every_gazette_succeeds_only_after_its_document_is_acknowledged(
        tmp_path: Path, log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    ext, writer = FakeExtractor(tmp_path, log), FakeWriter(log, every=3, reject=["d95"])
    summary = runner(tmp_path, ext, writer, [rows(7), rows(20)[7:]], monkeypatch).run(0, 100)
    assert (summary.seen, summary.succeeded, summary.failed) == (20, 19, 1)
    for gid in range(81, 101):
        if gid == 95:
            assert log.ids("fail:rejected") == [95] and 95 not in log.ids("succeed")
            continue
        assert log.first("claim", gid) < log.first("fetch", gid) < log.first("text", gid) \
            < log.first("upload", gid) < log.first("ack", gid) < log.first("succeed", gid)
    assert sorted(log.ids("succeed")) == [g for g in range(81, 101) if g != 95]
    assert log.ids("release") == []
    assert list(tmp_path.iterdir()) == []  # every temp dir removed


def test_files_in_flight_stay_bounded_and_downloads_overlap_tika(
        tmp_path: Path, log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    ext = FakeExtractor(tmp_path, log)
    # Tika's work on gazette g returns only once the download of the next one (g - 1) has started:
    # the test hangs (and fails at WAIT) unless the two overlap.
    for gid in range(100, 61, -1):
        ext.gate[gid] = ext.fetch_started.setdefault(gid - 1, threading.Event())
    r = runner(tmp_path, ext, FakeWriter(log, every=500), [rows(40)], monkeypatch)
    summary = r.run(0, 100)
    assert summary.succeeded == 40
    assert 2 <= ext.max_on_disk <= pl.FILES_IN_FLIGHT
    assert r.pipeline is not None
    assert r.pipeline.fetched.high_water <= 1 and r.pipeline.texted.high_water <= 1


def test_index_queue_is_bounded_by_text_memory() -> None:
    h: pl.Handoff[str] = pl.Handoff(100, len)
    got: list[str] = []
    consumer_may_start = threading.Event()

    def consume() -> None:
        assert consumer_may_start.wait(WAIT)
        while (item := h.get()) is not None:
            got.append(item)

    t = threading.Thread(target=consume)
    t.start()
    h.put("a" * 60)
    consumer_may_start.set()  # the next put blocks until the consumer took the first item
    for _ in range(5):
        h.put("b" * 60)
    h.put("c" * 500)  # heavier than the bound: passes alone
    h.close()
    t.join(WAIT)
    assert len(got) == 7 and h.high_water <= 500
    assert max(len(i) for i in got[:6]) == 60


def test_gazette_errors_are_recorded_and_the_range_goes_on(
        tmp_path: Path, log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    from qd_extractor import storage

    ext = FakeExtractor(tmp_path, log, fetch_errors={98: GazetteError(ErrorClass.NOT_FOUND, "404"),
                                                     96: storage.StorageError("GET: reset")},
                        text_errors={94: GazetteError(ErrorClass.CORRUPT, "422"), 93: ValueError("bug")})
    summary = runner(tmp_path, ext, FakeWriter(log), [rows(10)], monkeypatch).run(0, 100)
    assert (summary.seen, summary.succeeded, summary.failed) == (10, 6, 4)
    assert log.ids("fail:not_found") == [98] and log.ids("fail:storage") == [96]
    assert log.ids("fail:corrupt") == [94] and log.ids("fail:internal") == [93]
    assert sorted(log.ids("succeed")) == [91, 92, 95, 97, 99, 100]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("stop", [Stop(), TikaUnavailableError("Tika unavailable for 600s")],
                         ids=["sigterm", "tika-outage-limit"])
def test_stopping_with_gazettes_in_flight_releases_exactly_the_unrecorded(
        tmp_path: Path, log: Log, monkeypatch: pytest.MonkeyPatch, stop: BaseException) -> None:
    ext = FakeExtractor(tmp_path, log, text_errors={95: stop})
    ext.gate[95] = ext.fetch_started.setdefault(94, threading.Event())  # the next download is under way
    with pytest.raises(type(stop)):
        runner(tmp_path, ext, FakeWriter(log, every=2), [rows(20)], monkeypatch).run(0, 100)
    succeeded, released = set(log.ids("succeed")), set(log.ids("release"))
    claimed = set(log.ids("claim"))
    assert {100, 99} <= succeeded  # acknowledged in the first bulk before the signal
    assert 95 in released and 94 in released and not succeeded & released
    assert succeeded | released == claimed  # nothing left 'running'
    assert list(tmp_path.iterdir()) == []  # the files of every gazette in flight were removed


def test_search_down_stops_the_range_with_its_own_error_and_releases(
        tmp_path: Path, log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    ext = FakeExtractor(tmp_path, log)
    with pytest.raises(SearchUnavailableError):
        runner(tmp_path, ext, FakeWriter(log, every=2, down_after=1), [rows(12)], monkeypatch).run(0, 100)
    succeeded, released = set(log.ids("succeed")), set(log.ids("release"))
    assert succeeded == {100, 99}
    assert released and not succeeded & released and succeeded | released == set(log.ids("claim"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("limit_mib", [128, 256, 512, 1024, 6144])
def test_pipeline_buffers_fit_the_memory_budget(limit_mib: int) -> None:
    from qd_extractor import memory

    b = memory.Budget.from_limit(limit_mib * memory.MIB)
    live = (b.io_chunk * 3  # fetch, Tika and upload threads stream at once
            + b.part_size  # one multipart part of a big text
            + b.max_index_text * 2 * 3  # one document being built, at 2 bytes per character, ~3 copies
            + b.bulk_bytes  # texts queued for the index thread while requests are in flight
            + b.bulk_bytes * 2)  # the writer's NDJSON, pending plus in flight, and a margin as large
    assert live < b.limit * 0.75
