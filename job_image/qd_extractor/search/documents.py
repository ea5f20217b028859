"""The gazette index document, its URLs and the text-size cap.

The document is what upstream indexes (`dict(gazette)` after extraction): exactly 17 fields, in
upstream's order. Values are left as Python objects (date, datetime, bool, int) and serialised by
opensearch-py's JSONSerializer in `bulk.BulkWriter`, so `date` becomes "2020-10-18" and timestamps
become naive ISO strings ("2020-10-18T12:34:56.123456"), the forms the API parses.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

#: Upstream's gazette document fields, in upstream's order (the 15 selected columns + url + file_raw_txt).
GAZETTE_FIELDS: tuple[str, ...] = (
    "id", "source_text", "date", "edition_number", "is_extra_edition", "power", "file_checksum",
    "file_path", "file_url", "scraped_at", "created_at", "territory_id", "processed", "territory_name",
    "state_code", "url", "file_raw_txt",
)

#: Row keys the document copies from the pending-gazette query (everything except the three we compute).
_ROW_FIELDS = tuple(f for f in GAZETTE_FIELDS if f not in ("source_text", "url", "file_raw_txt"))


def gazette_document(row: Mapping[str, Any], *, url: str, file_raw_txt: str, text: str) -> dict[str, Any]:
    """Build the 17-field document for one gazette (or one association segment).

    `row` is the pending-gazette row (gazettes joined with territory_name/state_code). `processed` is
    the value read from the DB *before* this run marks it, as upstream (false for gazettes; segments
    pass a row with processed=True). The DB `source_text` is ignored: upstream overwrites it with `text`.
    """
    missing = [f for f in _ROW_FIELDS if f not in row]
    if missing:
        raise KeyError(f"gazette row lacks fields: {', '.join(missing)}")
    doc: dict[str, Any] = {}
    for field in GAZETTE_FIELDS:
        if field == "source_text":
            doc[field] = text
        elif field == "url":
            doc[field] = url
        elif field == "file_raw_txt":
            doc[field] = file_raw_txt
        else:
            doc[field] = row[field]
    return doc


def url_for(key: str, *, relative: bool, files_endpoint: str | None) -> str:
    """Public reference for a bucket object, as upstream writes `url` and `file_raw_txt`.

    USE_RELATIVE_FILE_PATHS=true: the key itself. Otherwise `f"{QUERIDO_DIARIO_FILES_ENDPOINT}/{key}"`
    verbatim: no scheme is added and no slash is trimmed (production's endpoint has no scheme, and the
    API's URL builder expects exactly these forms). Upstream fails each gazette when the endpoint is unset;
    we raise ValueError so the caller can refuse to start instead.
    """
    if relative:
        return key
    if not files_endpoint:
        raise ValueError("QUERIDO_DIARIO_FILES_ENDPOINT is required unless USE_RELATIVE_FILE_PATHS=true")
    return f"{files_endpoint}/{key}"


def cap_text(text: str, max_bytes: int) -> tuple[str, bool]:
    """Cut `text` to at most `max_bytes` UTF-8 bytes on a character boundary; return (text, truncated).

    Rule: a text over the cap is indexed truncated (`source_text` only; the document keeps its 17
    fields and nothing is appended), the full text stays in the bucket (`file_raw_txt` points to it),
    and the caller records the truncation in its state table. The cap counts UTF-8 bytes of the text,
    not of its JSON encoding (escapes add a little). Only a prefix is encoded, so memory stays
    proportional to the cap, not to the text.
    """
    if max_bytes < 0:
        raise ValueError("max_bytes must be >= 0")
    if len(text) * 4 <= max_bytes:  # a code point is at most 4 bytes: fits without encoding
        return text, False
    # A code point is at least 1 byte, so the first max_bytes + 1 characters decide everything.
    head = text[: max_bytes + 1].encode("utf-8", "surrogatepass")
    if len(head) <= max_bytes:  # only possible when the whole text fit in the slice
        return text, False
    cut = max_bytes
    while cut > 0 and (head[cut] & 0xC0) == 0x80:  # head[cut] continues a character: step back to its start
        cut -= 1
    return head[:cut].decode("utf-8", "surrogatepass"), True


def read_capped(path: Path, max_bytes: int) -> tuple[str, bool]:
    """`cap_text` for a UTF-8 file: its text cut to `max_bytes` on a character boundary, and whether it was cut.

    One bytes buffer and one str live at once (no slicing copies). The file is UTF-8 we wrote
    ourselves, so a cut multi-byte character at the end is the only thing `ignore` drops.
    """
    with path.open("rb") as f:
        data = f.read(max_bytes)
        truncated = bool(f.read(1))
    text = data.decode("utf-8", errors="ignore" if truncated else "replace")
    del data
    return text, truncated
