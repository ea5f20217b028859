"""An S3 outage stops the range with exit 3 and burns nothing; one object's error stays that gazette's.

The CLI test points STORAGE_ENDPOINT at a closed loopback port: a real refused connection. MinIO
cannot be made to answer 500 on demand or hang up mid-request, so the `Storage` tests use a tiny
HTTP server on 127.0.0.1 that answers the way a broken S3 endpoint does (real sockets, real botocore
retries; no mock of the client).
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qd_devtools import fixtures as fx
from qd_extractor import storage
from qd_extractor.settings import StorageSettings

pytestmark = pytest.mark.integration


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def events(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_s3_unreachable_exits_3_with_every_gazette_back_to_pending(world) -> None:  # type: ignore[no-untyped-def]
    # More gazettes than one claim (8), so some are claimed and some never reached.
    loaded = world.load([fx.text_pdf(seed=s) for s in range(40, 52)])
    endpoint = f"http://127.0.0.1:{closed_port()}"
    result = world.run("extract", timeout=120, STORAGE_ENDPOINT=endpoint)
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-2000:]

    with world.conn.cursor() as cur:
        cur.execute("SELECT gazette_id, state, attempts, error_class FROM qd_gazette_state WHERE stage='extract'")
        rows = cur.fetchall()
    assert rows, "the range was claimed before the first download"
    assert {(state, attempts, error) for _, state, attempts, error in rows} == {("pending", 0, None)}
    assert {r[0] for r in rows} <= {g.id for g in loaded}
    assert not any(world.processed().values())

    log = events(result.stdout)
    assert not [e for e in log if e.get("event_type") == "gazette_outcome"]  # nothing recorded failed
    (infra,) = [e for e in log if e.get("event_type") == "infrastructure_error"]
    assert infra["error_type"] == "StorageUnavailableError"
    assert "S3" in infra["message"] and endpoint in infra["message"], infra["message"]
    (summary,) = [e for e in log if e.get("event_type") == "range_summary"]
    assert (summary["succeeded"], summary["failed"]) == (0, 0)


class BrokenS3(http.server.BaseHTTPRequestHandler):
    """Answers by key: `missing…` 404 NoSuchKey, `denied…` 403, `hangup…` closes without a word, else 500."""

    hits: Counter[str]
    protocol_version = "HTTP/1.1"  # so botocore's `Expect: 100-continue` on PUT is answered at once

    def _answer(self) -> None:
        self.hits[f"{self.command} {self.path.split('?')[0]}"] += 1
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        key = self.path.rsplit("/", 1)[-1]
        if key.startswith("hangup"):
            self.close_connection = True
            return
        status, code = {"missing": (404, "NoSuchKey"), "denied": (403, "AccessDenied")}.get(
            key.split("-")[0].split("?")[0], (500, "InternalError"))
        body = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>test</Message></Error>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_HEAD = _answer

    def log_message(self, *args: Any) -> None:  # quiet: the test reads `hits`, not stderr
        pass


@pytest.fixture()
def broken() -> Iterator[tuple[storage.Storage, Counter[str]]]:
    hits: Counter[str] = Counter()
    handler = type("Handler", (BrokenS3,), {"hits": hits})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    settings = StorageSettings(bucket="b", region="us-east-1", access_key="k", secret_key="s",
                               endpoint=f"http://127.0.0.1:{server.server_address[1]}")
    try:
        yield storage.Storage(settings, part_size=1024, io_chunk=1024), hits
    finally:
        server.shutdown()
        server.server_close()


def test_5xx_and_hangups_after_retries_mean_unavailable(broken: tuple[storage.Storage, Counter[str]],
                                                        tmp_path: Path) -> None:
    store, hits = broken
    answers_500 = r"S3 at http://127\.0\.0\.1:\d+ answers HTTP 500 InternalError after retries"
    with pytest.raises(storage.StorageUnavailableError, match=answers_500):
        store.download("g-1.pdf", tmp_path / "out")
    assert hits["GET /b/g-1.pdf"] > 1  # botocore retried before we gave up
    with pytest.raises(storage.StorageUnavailableError, match="unreachable"):
        store.download("hangup-1.pdf", tmp_path / "out")
    small, big = tmp_path / "small.txt", tmp_path / "big.txt"
    small.write_bytes(b"x" * 100)
    big.write_bytes(b"x" * 3000)  # over part_size: multipart, whose errors boto3 wraps
    for source in (small, big):
        with pytest.raises(storage.StorageUnavailableError):
            store.upload_file(source, f"text-{source.name}")
    with pytest.raises(storage.StorageUnavailableError):
        store.upload_bytes(b"segment", "segment.txt")
    with pytest.raises(storage.StorageUnavailableError):
        store.head("g-2.pdf")


def test_one_objects_refusal_stays_a_per_gazette_error(broken: tuple[storage.Storage, Counter[str]],
                                                       tmp_path: Path) -> None:
    store, _ = broken
    with pytest.raises(storage.ObjectNotFoundError):
        store.download("missing-1.pdf", tmp_path / "out")
    with pytest.raises(storage.StorageError) as err:
        store.download("denied-1.pdf", tmp_path / "out")
    assert not isinstance(err.value, storage.StorageUnavailableError)
    assert "AccessDenied" in str(err.value)
