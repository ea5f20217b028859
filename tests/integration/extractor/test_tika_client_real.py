"""The Tika client against the real Tika: plain text back, and each refusal with its status."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from qd_devtools import fixtures as fx
from qd_extractor import tika
from qd_extractor.settings import TikaSettings

pytestmark = pytest.mark.integration


def client(tika_url: str) -> tika.TikaClient:
    settings = TikaSettings(url=tika_url, max_retries=3, retry_base_delay=0.05, connect_timeout=5, read_timeout=60)
    return tika.TikaClient(settings, io_chunk=64 * 1024, logger=logging.getLogger("test.tika"))


def extract(tika_client: tika.TikaClient, fixture: fx.Fixture, tmp_path: Path, mime: str | None = None) -> Path:
    src, dest = fixture.write_to(tmp_path), tmp_path / "text.txt"
    tika_client.extract(src, mime or fixture.mime, dest)
    return dest


@pytest.mark.parametrize("make", [fx.text_pdf, fx.docx], ids=["pdf", "docx"])
def test_text_comes_back_plain_and_utf8(make: Callable[[int], fx.Fixture], tika_url: str, tmp_path: Path) -> None:
    # Without `Accept: text/plain` this Tika answers XHTML (text/xml) for the same request.
    fixture = make(3)
    tika_client = client(tika_url)
    dest = extract(tika_client, fixture, tmp_path)
    text = dest.read_text(encoding="utf-8")
    assert "<html" not in text and "<?xml" not in text and "<body" not in text
    assert fixture.phrase is not None and fixture.phrase in text  # accents decoded as UTF-8
    assert dest.stat().st_size == len(text.encode("utf-8"))
    assert tika_client.requests == 1 and tika_client.failures == 0


def test_corrupt_file_is_rejected_with_422_at_once(tika_url: str, tmp_path: Path) -> None:
    tika_client = client(tika_url)
    with pytest.raises(tika.TikaRejectedError) as raised:
        extract(tika_client, fx.corrupt_pdf(3), tmp_path)
    assert raised.value.status == 422 and "HTTP 422" in str(raised.value)
    assert tika_client.requests == 1  # a refusal is the file's answer: never retried


def test_unparseable_content_type_is_rejected_with_415(tika_url: str, tmp_path: Path) -> None:
    # Real Tika answers 200 with no text for a type it has no parser for; its 415 comes from a
    # Content-Type it cannot parse. libmagic never reports one, but the client must map it all the same.
    tika_client = client(tika_url)
    with pytest.raises(tika.TikaRejectedError) as raised:
        extract(tika_client, fx.text_pdf(3), tmp_path, mime="application/")
    assert raised.value.status == 415
    assert tika_client.requests == 1


def test_a_500_is_the_files_answer_and_not_retried(tika_url: str, tmp_path: Path) -> None:
    # A real, deterministic 500: Tika fails on a charset it does not know. Sending it again gets the
    # same answer, so the client does not retry it (upstream retries no status at all); the
    # extractor records it as a transient `tika` failure, retried by later runs.
    tika_client = client(tika_url)
    with pytest.raises(tika.TikaRejectedError) as raised:
        extract(tika_client, fx.txt_utf8(3), tmp_path, mime="text/plain; charset=qd-no-such-charset")
    assert raised.value.status == 500
    assert tika_client.requests == 1 and tika_client.failures == 1
