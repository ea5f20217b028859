"""The gazette document: upstream's 17 fields and order, serialisation, URLs and the text cap."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from opensearchpy.serializer import JSONSerializer

from qd_extractor.search import GAZETTE_FIELDS, cap_text, gazette_document, url_for

UPSTREAM_ORDER = ["id", "source_text", "date", "edition_number", "is_extra_edition", "power", "file_checksum",
                  "file_path", "file_url", "scraped_at", "created_at", "territory_id", "processed",
                  "territory_name", "state_code", "url", "file_raw_txt"]


def _row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        # Deliberately not in upstream's order: the document must impose its own.
        "territory_name": "Palmas", "state_code": "TO", "processed": False, "id": 42,
        "source_text": "legacy text from the DB", "date": dt.date(2020, 10, 18), "edition_number": "1234",
        "is_extra_edition": False, "power": "executive", "file_checksum": "e87884cdfac583d23426f1d4d3b24a4d",
        "file_path": "1721000/2020-10-18/e87884cdfac583d23426f1d4d3b24a4d099f658c.pdf",
        "file_url": "https://palmas.to.gov.br/diario.pdf",
        "scraped_at": dt.datetime(2020, 10, 18, 12, 34, 56, 123456),
        "created_at": dt.datetime(2020, 10, 18, 13, 0, 0), "territory_id": "1721000",
    }
    row.update(overrides)
    return row


def _doc(**overrides: Any) -> dict[str, Any]:
    return gazette_document(_row(**overrides), url="e/1721000/x.pdf", file_raw_txt="e/1721000/x.txt",
                            text="extracted text")


def test_exactly_upstreams_17_fields_in_order() -> None:
    assert list(GAZETTE_FIELDS) == UPSTREAM_ORDER
    assert list(_doc()) == UPSTREAM_ORDER


def test_values_come_from_row_and_arguments() -> None:
    doc = _doc(extra_column="ignored")
    assert doc["source_text"] == "extracted text"  # never the DB's legacy source_text
    assert (doc["url"], doc["file_raw_txt"]) == ("e/1721000/x.pdf", "e/1721000/x.txt")
    assert doc["processed"] is False  # the value read before the update, as upstream
    assert "extra_column" not in doc
    assert gazette_document(_row(processed=True), url="u", file_raw_txt="f", text="t")["processed"] is True


def test_missing_row_field_is_named() -> None:
    row = _row()
    del row["state_code"]
    with pytest.raises(KeyError, match="state_code"):
        gazette_document(row, url="u", file_raw_txt="f", text="t")


def test_serialises_like_opensearch_py_default_serializer() -> None:
    encoded = JSONSerializer().dumps(_doc())
    assert '"date":"2020-10-18"' in encoded
    assert '"scraped_at":"2020-10-18T12:34:56.123456"' in encoded
    assert '"created_at":"2020-10-18T13:00:00"' in encoded  # naive ISO, no microseconds when zero, no tz
    decoded = json.loads(encoded)
    assert list(decoded) == UPSTREAM_ORDER
    assert decoded["id"] == 42 and decoded["is_extra_edition"] is False


def test_url_legacy_mode_prefixes_endpoint_verbatim() -> None:
    key = "2102325/2026-01-02/df32016535934c47f128e3473dbe0d25f4cc8541"
    # Production's endpoint has no scheme and none is added.
    assert url_for(key, relative=False, files_endpoint="data.queridodiario.ok.org.br") == \
        f"data.queridodiario.ok.org.br/{key}"
    assert url_for("a/b.txt", relative=False, files_endpoint="https://files.example") == "https://files.example/a/b.txt"
    # f"{endpoint}/{key}" exactly as upstream, even with a trailing slash.
    assert url_for("a/b.txt", relative=False, files_endpoint="files.example/") == "files.example//a/b.txt"


def test_url_relative_mode_is_the_key() -> None:
    assert url_for("1721000/2016-10-25/x.txt", relative=True, files_endpoint=None) == "1721000/2016-10-25/x.txt"
    assert url_for("k.txt", relative=True, files_endpoint="ignored.example") == "k.txt"


@pytest.mark.parametrize("endpoint", [None, ""])
def test_url_legacy_mode_requires_endpoint(endpoint: str | None) -> None:
    with pytest.raises(ValueError, match="QUERIDO_DIARIO_FILES_ENDPOINT"):
        url_for("k", relative=False, files_endpoint=endpoint)


def test_cap_text_under_and_over() -> None:
    assert cap_text("abc", 3) == ("abc", False)
    assert cap_text("abcd", 3) == ("abc", True)
    assert cap_text("", 0) == ("", False)
    assert cap_text("a", 0) == ("", True)


@pytest.mark.parametrize(("cap", "expected"), [
    (1, "a"),   # "ç" (2 bytes) does not fit in what is left
    (2, "a"),
    (3, "aç"),
    (4, "aç"),  # "ã" would be split
    (5, "açã"),
    (6, "açã"),  # "€" is 3 bytes
    (7, "açã"),
    (8, "açã€"),
    (11, "açã€"),  # "𝄞" is 4 bytes
    (12, "açã€𝄞"),
])
def test_cap_text_never_splits_a_multibyte_character(cap: int, expected: str) -> None:
    text = "açã€𝄞z"
    capped, truncated = cap_text(text, cap)
    assert capped == expected
    assert truncated
    assert len(capped.encode()) <= cap


def test_cap_text_is_the_longest_fitting_prefix_for_every_cap() -> None:
    text = "Diário Oficial — nº 1.234 € 𝄞 licitação\n" * 3
    size = len(text.encode())
    for cap in range(size + 3):
        capped, truncated = cap_text(text, cap)
        assert text.startswith(capped)
        assert len(capped.encode()) <= cap
        assert truncated == (size > cap)
        if truncated:  # one more character would not fit
            assert len(text[: len(capped) + 1].encode()) > cap


def test_cap_text_rejects_negative_cap() -> None:
    with pytest.raises(ValueError):
        cap_text("a", -1)
