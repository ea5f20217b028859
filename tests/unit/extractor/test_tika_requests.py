"""What the Tika client puts on the wire, and which statuses it retries.

A tiny HTTP server on 127.0.0.1 stands in for Tika here, only to observe the requests (their
headers and chunk framing) and to answer 502/503/504 on demand, which real Tika cannot be made to
do. What real Tika answers is tested in tests/integration/extractor/test_tika_client_real.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from qd_extractor import tika
from qd_extractor.settings import TikaSettings

TEXT = "Aviso de licitação: Escola Municipal São José\n"


@dataclasses.dataclass
class Seen:
    """One request as the stand-in received it."""

    method: str
    path: str
    headers: dict[str, str]
    chunks: list[bytes]


class StandIn(ThreadingHTTPServer):
    """Answers each PUT with the next status of `statuses` (the last one repeats), recording it."""

    def __init__(self, statuses: list[int]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.statuses = statuses
        self.seen: list[Seen] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: StandIn

    def do_PUT(self) -> None:
        chunks = self._chunked_body() if "chunked" in self.headers.get("Transfer-Encoding", "") else (
            [self.rfile.read(int(self.headers.get("Content-Length", "0")))])
        with self.server.lock:
            self.server.seen.append(Seen("PUT", self.path, dict(self.headers.items()), chunks))
            status = self.server.statuses[min(len(self.server.seen), len(self.server.statuses)) - 1]
        body = TEXT.encode() if status == 200 else b"stand-in failure"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _chunked_body(self) -> list[bytes]:
        chunks: list[bytes] = []
        while size := int(self.rfile.readline().split(b";")[0].strip(), 16):
            chunks.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers, then the final CRLF
            pass
        return chunks

    def log_message(self, format: str, *args: object) -> None:
        pass  # keep test output clean


@contextlib.contextmanager
def serving(statuses: list[int]) -> Iterator[StandIn]:
    server = StandIn(statuses)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture()
def ok() -> Iterator[StandIn]:
    with serving([200]) as server:
        yield server


def client(url: str, *, max_retries: int = 3, chunk_size: int = 512) -> tika.TikaClient:
    settings = TikaSettings(url=url, max_retries=max_retries, retry_base_delay=0.01, chunk_size=chunk_size,
                            connect_timeout=5, read_timeout=5)
    return tika.TikaClient(settings, io_chunk=64 * 1024, logger=logging.getLogger("test.tika"))


def source(tmp_path: Path, size: int = 5000) -> Path:
    path = tmp_path / "source.pdf"
    path.write_bytes(bytes(i % 251 for i in range(size)))
    return path


def test_put_streams_a_chunked_body_asking_for_plain_text(ok: StandIn, tmp_path: Path) -> None:
    src, dest = source(tmp_path), tmp_path / "text.txt"
    assert client(ok.url, chunk_size=512).extract(src, "application/pdf", dest) == len(TEXT.encode())
    assert dest.read_text(encoding="utf-8") == TEXT
    (seen,) = ok.seen
    headers = {k.lower(): v for k, v in seen.headers.items()}
    assert (seen.method, seen.path) == ("PUT", "/tika")
    assert headers["content-type"] == "application/pdf"
    assert headers["accept"] == "text/plain"
    assert headers["transfer-encoding"] == "chunked" and "content-length" not in headers
    # One chunk per TIKA_CHUNK_SIZE read of the file: streamed, never sent as one buffer.
    assert [len(c) for c in seen.chunks] == [512] * 9 + [5000 - 9 * 512]
    assert b"".join(seen.chunks) == src.read_bytes()


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_statuses_are_retried_with_the_whole_body(status: int, tmp_path: Path) -> None:
    with serving([status, 200]) as server:
        src, dest = source(tmp_path), tmp_path / "text.txt"
        tika_client = client(server.url)
        assert tika_client.extract(src, "application/pdf", dest) == len(TEXT.encode())
        assert dest.read_text(encoding="utf-8") == TEXT
        assert len(server.seen) == tika_client.requests == 2
        assert [b"".join(s.chunks) for s in server.seen] == [src.read_bytes()] * 2  # the body rebuilt per attempt


def test_a_persistent_503_becomes_unavailable_after_the_configured_attempts(tmp_path: Path) -> None:
    with serving([503]) as server:
        tika_client = client(server.url, max_retries=3)
        with pytest.raises(tika.TikaUnavailableError, match="503"):
            tika_client.extract(source(tmp_path), "application/pdf", tmp_path / "text.txt")
        assert len(server.seen) == 3 and tika_client.failures == 1
