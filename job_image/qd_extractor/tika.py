"""Apache Tika client: a chunked PUT streamed from a file, the text streamed to a file.

Like upstream: `PUT /tika` with the libmagic type, `Accept: text/plain`, a generator body (so
`Transfer-Encoding: chunked`), retries on connection errors and timeouts with exponential backoff
and jitter, the body rebuilt per attempt. Unlike upstream, the response is never buffered whole,
and an outage opens a circuit: work pauses until Tika answers again instead of failing every
gazette in the range.
"""

from __future__ import annotations

import codecs
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import requests
import tenacity

from qd_extractor import logs
from qd_extractor.settings import TikaSettings

#: Statuses that mean "Tika is overloaded or restarting": retried like connection errors.
_RETRY_STATUSES = frozenset({502, 503, 504})
_NETWORK_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class TikaRejectedError(Exception):
    """Tika answered but refused the file (422 corrupt, 415 unsupported, 500 parser crash)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"Tika returned HTTP {status}: {detail[:500]}")
        self.status = status


class TikaUnavailableError(Exception):
    """Tika cannot be reached (after retries, or after the circuit waited `outage_max`)."""


class _RetryableStatus(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"Tika returned HTTP {status}")
        self.status = status


class TikaClient:
    """One pooled session; not thread-safe (one gazette at a time per process)."""

    def __init__(self, settings: TikaSettings, *, io_chunk: int, logger: logging.Logger,
                 sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.io_chunk = io_chunk
        self.log = logger
        self.sleep = sleep
        self.clock = clock
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=settings.pool_size,
                                                pool_maxsize=settings.pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.requests = 0
        self.failures = 0

    def _body(self, path: Path) -> Iterator[bytes]:
        with path.open("rb") as f:
            while chunk := f.read(self.settings.chunk_size):
                yield chunk

    def _put_once(self, path: Path, mime: str, dest: Path) -> int:
        self.requests += 1
        started = self.clock()
        logs.event(self.log, logs.TIKA_REQUEST, "Tika request", mime=mime,
                   file_size_mb=round(path.stat().st_size / 1048576, 3))
        response = self.session.put(
            f"{self.settings.url}/tika", data=self._body(path), stream=True,
            headers={"Content-Type": mime, "Accept": "text/plain", "Connection": "keep-alive"},
            timeout=(self.settings.connect_timeout, self.settings.read_timeout))
        with response:
            if response.status_code in _RETRY_STATUSES:
                raise _RetryableStatus(response.status_code)
            if response.status_code != 200:
                raise TikaRejectedError(response.status_code, response.text)
            # Decode as UTF-8 with replacement, exactly like upstream's `response.text`.
            decoder = codecs.getincrementaldecoder("utf-8")("replace")
            written = 0
            with dest.open("wb") as out:
                for block in response.iter_content(self.io_chunk):
                    data = decoder.decode(block).encode("utf-8")
                    out.write(data)
                    written += len(data)
                tail = decoder.decode(b"", final=True).encode("utf-8")
                out.write(tail)
                written += len(tail)
        logs.event(self.log, logs.TIKA_RESPONSE, "Tika response", status=200, text_bytes=written,
                   duration_ms=round((self.clock() - started) * 1000, 1))
        return written

    def extract(self, path: Path, mime: str, dest: Path) -> int:
        """Extract the text of `path` into `dest` (UTF-8); return its size in bytes."""
        base = self.settings.retry_base_delay
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type((*_NETWORK_ERRORS, _RetryableStatus)),
            stop=tenacity.stop_after_attempt(self.settings.max_retries),
            wait=tenacity.wait_exponential(multiplier=base, min=base, max=base * 16)
            + tenacity.wait_random(0, base * 0.1),
            sleep=self.sleep, reraise=True)
        try:
            return int(retrying(self._put_once, path, mime, dest))
        except (*_NETWORK_ERRORS, _RetryableStatus) as err:
            self.failures += 1
            logs.event(self.log, logs.TIKA_ERROR, "Tika unreachable after retries", level=logging.ERROR,
                       error_type=type(err).__name__, error=str(err))
            raise TikaUnavailableError(str(err)) from err
        except TikaRejectedError as err:
            self.failures += 1
            logs.event(self.log, logs.TIKA_ERROR, "Tika rejected the file", level=logging.WARNING,
                       status=err.status, error=str(err))
            raise

    def healthy(self) -> bool:
        """True when Tika answers GET /version."""
        try:
            response = self.session.get(f"{self.settings.url}/version", timeout=(2, 5))
        except _NETWORK_ERRORS:
            return False
        return response.status_code == 200

    def wait_until_healthy(self) -> float:
        """The open circuit: poll Tika with backoff until it answers; return the seconds waited.

        Raises TikaUnavailableError after `outage_max` seconds, so a Job never waits forever.
        """
        started = self.clock()
        delay = 0.5
        logs.event(self.log, logs.CIRCUIT, "Tika unavailable: pausing work", state="open")
        while not self.healthy():
            waited = self.clock() - started
            if waited >= self.settings.outage_max:
                logs.event(self.log, logs.CIRCUIT, "Tika still unavailable: giving up", level=logging.ERROR,
                           state="open", waited_s=round(waited, 1))
                raise TikaUnavailableError(f"Tika unavailable for {waited:.0f}s (QD_TIKA_OUTAGE_MAX_SECONDS)")
            self.sleep(min(delay, max(0.0, self.settings.outage_max - waited)))
            delay = min(delay * 2, 10.0)
        waited = self.clock() - started
        logs.event(self.log, logs.CIRCUIT, "Tika is back: resuming", state="closed", waited_s=round(waited, 1))
        return waited
