"""Real Tika extracts each fixture's phrase, sent the way upstream sends it (libmagic MIME, text/plain)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from qd_devtools import ama, fixtures
from qd_devtools.territories import read_territories
from qd_devtools.text import paragraphs
from qd_devtools.word97 import word97_document

pytestmark = pytest.mark.integration

Maker = Callable[[int], fixtures.Fixture]
WITH_PHRASE = [f for f in fixtures.all_fixtures(1) if f.phrase is not None]


def tika_text(tika_url: str, body: bytes | Iterator[bytes], mime: str) -> requests.Response:
    response = requests.put(f"{tika_url}/tika", data=body, timeout=(30, 300),
                            headers={"Content-Type": mime, "Accept": "text/plain"})
    response.encoding = "UTF-8"  # as upstream does
    return response


@pytest.mark.parametrize("fx", WITH_PHRASE, ids=[f.kind for f in WITH_PHRASE])
def test_phrase_is_extracted(fx: fixtures.Fixture, tika_url: str) -> None:
    response = tika_text(tika_url, fx.read_bytes(), fx.mime)
    assert response.status_code == 200, response.text[:300]
    assert fx.phrase is not None and fx.phrase in response.text


def test_multipage_pdf_text_is_complete(tika_url: str) -> None:
    fx = fixtures.text_pdf(2)
    text = tika_text(tika_url, fx.read_bytes(), fx.mime).text
    for word in ["Município", "licitação", "Educação", "São"]:
        assert word in text
    assert "Esta norma entra em vigor" in text.rsplit("PREFEITURA", 1)[-1]  # last pages made it too


def test_doc_paragraphs_all_come_back(tika_url: str) -> None:
    expected = paragraphs(3, "São Miguel dos Campos", 12)
    assert len(expected) > 28  # more than one PAPX page
    response = tika_text(tika_url, word97_document(expected), fixtures.DOC)
    assert response.status_code == 200
    assert [p for p in response.text.split("\n") if p.strip()] == expected


@pytest.mark.parametrize("make", [fixtures.association, fixtures.association_txt])
def test_association_text_from_tika_splits_upstream_style(make: Maker, tika_url: str) -> None:
    fx = make(5)
    text = tika_text(tika_url, fx.read_bytes(), fx.mime).text
    by_slug = {ama.upstream_slug(t.name, t.state_code): t.name for t in read_territories()}
    names = [by_slug[ama.upstream_slug(name, "AL")] for name in ama.upstream_split(text)]
    assert names == list(fx.segments) and len(names) >= 3


def test_image_only_pdf_has_no_text(tika_url: str) -> None:
    fx = fixtures.image_only_pdf(1)
    response = tika_text(tika_url, fx.read_bytes(), fx.mime)
    assert response.status_code == 200
    assert response.text.strip() == ""


@pytest.mark.parametrize("make", [fixtures.corrupt_pdf, fixtures.empty])
def test_broken_files_are_refused(make: Maker, tika_url: str) -> None:
    fx = make(1)
    response = tika_text(tika_url, fx.read_bytes(), fx.mime)
    assert response.status_code == 422


def test_big_pdf_streamed_to_tika(tmp_path: Path, tika_url: str) -> None:
    fx = fixtures.big_pdf(tmp_path / "big.pdf", 8, seed=3)
    with fx.open() as body:
        response = tika_text(tika_url, iter(lambda: body.read(8192), b""), fx.mime)  # chunked, like upstream
    assert response.status_code == 200
    assert response.text.count("Município") > 1000
