"""One gazette through the extract stage: S3 → type check → Tika (or local text) → S3 .txt → documents.

Everything streams through files in a per-gazette temp directory; only the text that goes into an
index document (capped by the memory budget) is held in memory. Failures that belong to the file
are raised as `GazetteError` with their class; failures of a service propagate (the runner decides
whether to pause, record or stop).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from qd_core.states import ErrorClass
from qd_core.statestore import Document
from qd_extractor import detect, plaintext, storage, tika
from qd_extractor.search import documents as docs
from qd_extractor.segmentation import errors as seg_errors
from qd_extractor.segmentation import registry as segmenters
from qd_extractor.segmentation.base import segment_key
from qd_extractor.segmentation.territories import TerritoryIndex
from qd_extractor.settings import ExtractorSettings

#: Rounds a gazette gets with Tika: the first request (with its own retries) and one more each time
#: the circuit closes again. A file that keeps failing while Tika answers /version in between is
#: suspected of poisoning Tika (upstream: its JVM ran out of memory on one file); it then fails as a
#: transient `tika` error, so later runs retry it until QD_MAX_ATTEMPTS, and the range goes on.
TIKA_ROUNDS = 3
#: Seconds: a circuit that closes faster than this found Tika up, so the failure was this file's.
HEALTHY_AT_ONCE_S = 1.0
#: Outages while sending one file, after which the file is suspected of crashing Tika.
TIKA_OUTAGES = 5


class GazetteError(Exception):
    """This gazette cannot be processed; `error` says why (and whether it is terminal)."""

    def __init__(self, error: ErrorClass, message: str, *, source_bytes: int | None = None) -> None:
        super().__init__(message)
        self.error = error
        self.source_bytes = source_bytes


@dataclasses.dataclass
class Prepared:
    """A gazette whose text is in S3 and whose documents wait to be indexed."""

    row: Mapping[str, Any]
    documents: list[Document]
    sources: list[dict[str, Any]]
    source_bytes: int
    text_bytes: int
    timings: dict[str, float]


@dataclasses.dataclass
class Fetched:
    """A gazette between phases: its temp dir on disk (source, then text), nothing in memory."""

    row: Mapping[str, Any]
    tmp: Path
    size: int
    mime: str
    timings: dict[str, float]
    started: float = dataclasses.field(default_factory=time.monotonic)

    @property
    def src(self) -> Path:
        return self.tmp / "source"

    @property
    def txt(self) -> Path:
        return self.tmp / "text.txt"

    def cleanup(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class Extractor:
    """The stage's per-gazette work, with its collaborators injected (tests pass real ones)."""

    def __init__(self, settings: ExtractorSettings, store: storage.Storage, tika_client: tika.TikaClient,
                 territories: Callable[[], TerritoryIndex], logger: logging.Logger,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.storage = store
        self.tika = tika_client
        self.territories = territories
        self.log = logger
        self.clock = clock

    def url(self, key: str) -> str:
        return docs.url_for(key, relative=self.settings.relative_paths, files_endpoint=self.settings.files_endpoint)

    def prepare(self, row: Mapping[str, Any]) -> Prepared:
        """Extract and upload the text of one gazette; return the documents to index (all three phases)."""
        fetched = self.fetch(row)
        try:
            self.text(fetched)
            return self.finish(fetched)
        finally:
            fetched.cleanup()

    def fetch(self, row: Mapping[str, Any]) -> Fetched:
        """Phase 1: download the source into a fresh temp dir and check its type (no Tika, no upload)."""
        key = str(row["file_path"])
        tmp = Path(tempfile.mkdtemp(prefix=f"g{row['id']}-", dir=self.settings.work_dir))
        fetched = Fetched(row, tmp, 0, "", {})
        try:
            started = self.clock()
            try:
                fetched.size = self.storage.download(key, fetched.src, self.settings.max_file_bytes)
            except storage.ObjectNotFoundError:
                raise GazetteError(ErrorClass.NOT_FOUND, f"File not found in storage (404): {key}") from None
            except storage.ObjectTooLargeError as err:
                raise GazetteError(ErrorClass.TOO_LARGE, f"File too large ({err.size / 1048576:.1f} MB > "
                                   f"{self.settings.max_file_bytes // 1048576}MB): {key}",
                                   source_bytes=err.size) from None
            fetched.timings["download_ms"] = (self.clock() - started) * 1000
            try:
                fetched.mime = detect.classify(fetched.src, fetched.size, self.settings.extra_mime_types)
            except detect.UnsupportedTypeError as err:
                raise GazetteError(ErrorClass.UNSUPPORTED_TYPE, str(err), source_bytes=fetched.size) from None
            fetched.timings["fetch_ms"] = (self.clock() - started) * 1000
        except BaseException:
            fetched.cleanup()
            raise
        return fetched

    def text(self, fetched: Fetched) -> None:
        """Phase 2: the text into `fetched.txt` (Tika, or local transcoding); the source is deleted."""
        started = self.clock()
        if fetched.mime == detect.TEXT:
            plaintext.to_utf8(fetched.src, fetched.txt, self.settings.budget.io_chunk)
        else:
            self._tika(fetched.src, fetched.mime, fetched.txt, fetched.size)
        fetched.timings["text_ms"] = (self.clock() - started) * 1000
        fetched.src.unlink()

    def finish(self, fetched: Fetched) -> Prepared:
        """Phase 3: upload the text and build the documents (the caller removes the temp dir)."""
        row, txt, key = fetched.row, fetched.txt, str(fetched.row["file_path"])
        started = self.clock()
        text_key = storage.txt_key(key)
        self.storage.upload_file(txt, text_key)
        fetched.timings["upload_ms"] = (self.clock() - started) * 1000
        text_bytes = txt.stat().st_size
        row_with_urls = {**row, "url": self.url(key), "file_raw_txt": self.url(text_key)}
        if segmenters.is_association(str(row["territory_id"])):
            documents, sources = self._segments(row_with_urls, txt, text_bytes)
        else:
            text, truncated = docs.read_capped(txt, self.settings.budget.max_index_text)
            source = docs.gazette_document(row, url=row_with_urls["url"],
                                           file_raw_txt=row_with_urls["file_raw_txt"], text=text)
            del text  # the document holds the only reference
            documents = [Document(str(row["file_checksum"]), str(row["territory_id"]), text_key,
                                  text_bytes, truncated)]
            sources = [source]
        return Prepared(row, documents, sources, fetched.size, text_bytes, fetched.timings)

    def _tika(self, src: Path, mime: str, txt: Path, size: int) -> None:
        """Send the file to Tika until it works, waiting on the circuit after each failure.

        A failure after which Tika answers /version at once is a strike against the file (it times
        out, or breaks the parser); one after which Tika was down is an outage, waited out (or ending
        the Job via `wait_until_healthy`). `TIKA_ROUNDS` strikes, or `TIKA_OUTAGES` outages
        on the same file (a file that crashes Tika, which then restarts), fail the gazette alone.
        """
        strikes = outages = 0
        last = ""
        while True:
            try:
                self.tika.extract(src, mime, txt)
                return
            except tika.TikaRejectedError as err:
                error = ErrorClass.CORRUPT if err.status in (415, 422) else ErrorClass.TIKA
                raise GazetteError(error, str(err), source_bytes=size) from None
            except tika.TikaUnavailableError as err:
                last = str(err)
            # The open circuit: wait for Tika (TikaUnavailableError after the outage limit ends the Job).
            if self.tika.wait_until_healthy() < HEALTHY_AT_ONCE_S:
                strikes += 1
            else:
                outages += 1
            if strikes >= TIKA_ROUNDS or outages >= TIKA_OUTAGES:
                how = (f"{strikes} times while answering /version in between" if strikes >= TIKA_ROUNDS
                       else f"{outages} times, each time going down until it was restarted")
                raise GazetteError(ErrorClass.TIKA, f"Tika failed on this file {how}: suspected poison file"
                                   f" (last error: {last[:300]})", source_bytes=size)

    def _segments(self, row: dict[str, Any], txt: Path, text_bytes: int) -> tuple[list[Document], list[dict[str, Any]]]:
        territory = str(row["territory_id"])
        limit = self.settings.budget.max_segment_text
        try:
            segmenter = segmenters.get_segmenter(territory, territories=self.territories(), max_text_chars=limit)
            if text_bytes > limit:  # checked on bytes first, so a huge text is never read in
                raise seg_errors.SegmentTextTooLargeError(text_bytes, limit)
            text = txt.read_text(encoding="utf-8", errors="replace")
            segments = segmenter.segment(text, row, self.url)
        except seg_errors.NoSegmenterError as err:
            raise GazetteError(ErrorClass.NO_SEGMENTER, str(err)) from None
        except seg_errors.UnknownTerritoryError as err:
            raise GazetteError(ErrorClass.UNKNOWN_TERRITORY, str(err)) from None
        except seg_errors.SegmentTextTooLargeError as err:
            raise GazetteError(ErrorClass.TOO_LARGE, str(err)) from None
        documents: list[Document] = []
        for segment in segments:
            data = segment["source_text"].encode("utf-8")
            key = segment_key(str(segment["territory_id"]), segment["date"], str(segment["file_checksum"]))
            self.storage.upload_bytes(data, key)  # the whole segment: only the indexed copy is capped
            segment_bytes = len(data)
            del data
            # The same rule as a whole gazette's text (segments may be larger than the index cap).
            segment["source_text"], truncated = docs.cap_text(segment["source_text"],
                                                              self.settings.budget.max_index_text)
            documents.append(Document(str(segment["file_checksum"]), str(segment["territory_id"]), key,
                                      segment_bytes, truncated))
        return documents, segments
