"""What every segmenter returns: upstream-shaped segment documents and their storage keys."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol

from .territories import Territory

# Field order of upstream's GazetteSegment dataclass: its `.__dict__` is what gets indexed, so
# we keep the same key order in the document we hand to the indexer.
SEGMENT_FIELDS = (
    "id", "territory_name", "source_text", "date", "edition_number", "is_extra_edition", "power",
    "file_checksum", "scraped_at", "created_at", "processed", "file_path", "file_url", "state_code",
    "territory_id", "file_raw_txt", "url",
)

# Memory rule (see the package docstring): while segmenting, the process holds the caller's text
# plus at most about two more copies of it, and CPython stores 1, 2 or 4 bytes per character.
PEAK_TEXT_COPIES = 3
WORST_BYTES_PER_CHAR = 4
# 32M characters: worst-case peak 3 x 4 B x 32M ~= 384 MB; typical Tika text (2 B/char) ~= 192 MB.
DEFAULT_MAX_TEXT_CHARS = 32_000_000

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")

TxtUrl = Callable[[str], str]
"""Maps a storage key to the `file_raw_txt` value (endpoint-prefixed or relative, per settings)."""


class Segmenter(Protocol):
    """Splits one aggregated gazette's text into per-municipality segment documents."""

    def segment(self, text: str, gazette: Mapping[str, Any], txt_url: TxtUrl) -> list[dict[str, Any]]:
        """Return every segment, or raise before returning any (no partial results)."""
        ...


def max_text_chars_for(budget_bytes: int) -> int:
    """Largest text (in characters) whose worst-case segmentation peak fits in `budget_bytes`."""
    return max(1, budget_bytes // (PEAK_TEXT_COPIES * WORST_BYTES_PER_CHAR))


def segment_key(territory_id: str, date: dt.date | str, file_checksum: str) -> str:
    """Storage key of a segment's text: `<territory_id>/<YYYY-MM-DD>/<md5>.txt` (upstream §2)."""
    if isinstance(date, dt.date):
        day = f"{date:%Y-%m-%d}"
    elif isinstance(date, str) and _ISO_DATE.fullmatch(date):
        day = date
    else:
        raise ValueError(f"segment date must be a date or 'YYYY-MM-DD', got {date!r}")
    return f"{territory_id}/{day}/{file_checksum}.txt"


def md5_of_parts(parts: Iterable[str]) -> str:
    """MD5 of the UTF-8 bytes of the concatenated parts, without building the joined bytes."""
    digest = hashlib.md5(usedforsecurity=False)
    for part in parts:
        digest.update(part.encode("utf-8"))
    return digest.hexdigest()


def build_segment(
    gazette: Mapping[str, Any], territory: Territory, parts: list[str], txt_url: TxtUrl
) -> dict[str, Any]:
    """One segment document, as upstream's `build_segment` plus its `file_raw_txt` rewrite.

    The checksum covers the unstripped text; the stored `source_text` is stripped. Everything
    else (including the parent's `id`, `file_path`, `url`) is inherited from the gazette.
    """
    checksum = md5_of_parts(parts)
    doc: dict[str, Any] = {
        **gazette,
        "processed": True,
        "file_checksum": checksum,
        "source_text": "".join(parts).strip(),
        "territory_name": territory["territory_name"],
        "territory_id": territory["id"],
    }
    doc["file_raw_txt"] = txt_url(segment_key(territory["id"], gazette["date"], checksum))
    ordered = {name: doc.pop(name) for name in SEGMENT_FIELDS if name in doc}
    ordered.update(doc)
    return ordered
