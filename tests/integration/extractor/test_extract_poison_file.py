"""A file Tika keeps failing on while it stays healthy: the gazette fails alone, the range goes on."""

from __future__ import annotations

import json
import time
import zlib
from typing import Any

import pytest
import requests

from qd_devtools import fixtures as fx

pytestmark = pytest.mark.integration

#: No-op operator pairs in the slow page: seconds of real Tika before its first byte of text
#: (about 2 s on a busy 2-core machine, well under 1 s on an idle one with a warm JIT).
SLOW_PAGE_OPS = 12_000_000
#: The read timeout must sit well between the small files' time to first byte and the slow page's.
MARGIN = 4.0


def slow_pdf(seed: int) -> fx.Fixture:
    """A valid one-page PDF whose Flate content stream holds millions of `q Q` operators.

    A few kilobytes on disk, yet PDFBox parses every operator before Tika writes the page's text,
    so no byte comes back for seconds: a stand-in for the pathological files that make Tika time
    out (vector-heavy scans), without filling the shared Tika's heap. `qd_devtools` streams big
    text PDFs, whose first bytes come back too quickly to single them out with a read timeout.
    """
    content = zlib.compress(b"BT /F1 12 Tf 72 720 Td (Pagina lenta) Tj ET\n" + b"q Q\n" * SLOW_PAGE_OPS, 9)
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
               b" /Resources << /Font << /F1 5 0 R >> >> >>",
               b"<< /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream" % (len(content), content),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.7\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    small = fx.text_pdf(seed)
    return fx.Fixture("slow_pdf", "pdf", fx.PDF, None, small.territory_id, small.date, seed, bytes(out))


def first_byte_s(tika_url: str, fixture: fx.Fixture) -> float:
    """Seconds this Tika takes to send the first byte of `fixture`'s text (also warms its parser)."""
    started = time.monotonic()
    with requests.put(f"{tika_url}/tika", data=fixture.read_bytes(), stream=True, timeout=(10, 120),
                      headers={"Content-Type": fixture.mime, "Accept": "text/plain"}) as response:
        response.raise_for_status()
        next(response.iter_content(1), b"")
        return time.monotonic() - started


def read_timeout(tika_url: str, smalls: list[fx.Fixture], slow: fx.Fixture) -> str:
    """A read timeout MARGIN times above the slowest small file and MARGIN times below the slow page,
    measured on this Tika now (parse speed varies several-fold with the machine's load and the JIT)."""
    for f in smalls:  # a first pass loads each parser; only the warm pass counts
        first_byte_s(tika_url, f)
    small = max(first_byte_s(tika_url, f) for f in smalls)
    slow_s = first_byte_s(tika_url, slow)
    assert slow_s > MARGIN * MARGIN * small, f"no timeout separates the files: small {small:.3f} s, slow {slow_s:.3f} s"
    return f"{(small * slow_s) ** 0.5:.3f}"  # the geometric mean: the same factor of margin on both sides


def events(result: Any, event_type: str) -> list[dict[str, Any]]:
    lines = (result.stdout + result.stderr).splitlines()
    return [e for e in (json.loads(line) for line in lines if line.startswith("{"))
            if e.get("event_type") == event_type]


def test_file_tika_keeps_failing_on_fails_alone_and_is_retried_by_later_runs(world, tika_url: str) -> None:  # type: ignore[no-untyped-def]
    smalls = [fx.text_pdf(seed=40), fx.docx(seed=41), fx.odt(seed=42)]
    slow = slow_pdf(43)
    timeout = read_timeout(tika_url, smalls, slow)
    # Loaded last, so it has the highest id: ranges run newest first, so the others come after it.
    loaded = world.load([*smalls, slow])
    poison, others = loaded[-1], loaded[:-1]
    env = {"QD_TIKA_READ_TIMEOUT": timeout, "TIKA_MAX_RETRIES": "1", "TIKA_RETRY_BASE_DELAY": "0.05",
           "QD_MAX_ATTEMPTS": "2"}

    result = world.run("extract", timeout=120, **env)  # a gazette stuck forever fails here (TimeoutExpired)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    states = world.states()
    assert states[poison.id] == ("failed", "tika", False)  # transient: a later run retries it
    assert [states[g.id][0] for g in others] == ["succeeded"] * len(others)
    assert world.count() == len(others)
    with world.conn.cursor() as cur:
        cur.execute("SELECT attempts, error_message FROM qd_gazette_state WHERE gazette_id = %s", (poison.id,))
        attempts, message = cur.fetchone()
    assert attempts == 1
    assert "3 times while answering /version in between: suspected poison file" in message, message
    assert "timed out" in message.lower(), message
    # Exactly three rounds, each one request (TIKA_MAX_RETRIES=1) and one circuit wait that found Tika up.
    assert len(events(result, "tika_error")) == 3
    circuit = [e["state"] for e in events(result, "circuit_breaker")]
    assert circuit == ["open", "closed"] * 3

    # The next run retries it (transient) and, at QD_MAX_ATTEMPTS, records it as terminal.
    again = world.run("extract", timeout=120, **env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert world.states()[poison.id] == ("failed", "tika", True)
    with world.conn.cursor() as cur:
        cur.execute("SELECT attempts FROM qd_gazette_state WHERE gazette_id = %s", (poison.id,))
        assert cur.fetchone()[0] == 2
