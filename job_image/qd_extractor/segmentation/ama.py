"""Segmenter for the Associação dos Municípios Alagoanos gazette (territory 2700000).

Parity with upstream's `segmentation/segmenters/al_associacao_municipios.py` is the contract:
the regexes, the name fixes and the way segment text is assembled are identical, so the same
input yields the same segment texts, md5 ids and territory ids. Where we differ it is only in
how intermediate strings are held (fewer simultaneous copies); each such step says why it is
output-identical.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from .base import TxtUrl, build_segment, segment_key
from .errors import SegmentTextTooLargeError
from .territories import TerritoryIndex, territory_slug

__all__ = [
    "AL_ASSOCIATION_ID",
    "RE_CODE_IDENTIFIER",
    "RE_NAME_SUFFIXES",
    "RE_NOMES_MUNICIPIOS",
    "ALAssociationSegmenter",
    "normalize_territory_name",
    "segment_key",
    "split_text_by_territory",
]

log = logging.getLogger(__name__)

AL_ASSOCIATION_ID = "2700000"
STATE_CODE = "AL"

# Start of each municipality's publication: "ESTADO DE ALAGOAS / PREFEITURA MUNICIPAL DE <name>".
# Groups: start marker, name (up to two lines), end marker. Identical tokens to upstream; the
# lookaheads skip known false names (EDUCAÇÃO: Dois Riachos 2023-12-07; VAMOS: Poço das
# Trincheiras 2022-01-06) and the end marker accepts SECRETARIA/Secretaria (Coité do Nóia
# 2018-10-02; Quebrangulo 2023-07-18).
RE_NOMES_MUNICIPIOS = re.compile(
    r"""
    (ESTADO\sDE\sALAGOAS(?:|\s)\n{1,2}PREFEITURA\sMUNICIPAL\sDE\s)  # start marker
    ((?!EDUCAÇÃO).*?\n{0,2}(?!VAMOS).*?$)                           # municipality name
    (\n\s(?:\s|SECRETARIA|Secretaria))                              # end marker
    """,
    re.MULTILINE | re.VERBOSE,
)

# Each act ends with its identifier; everything after the last one is the trailer.
RE_CODE_IDENTIFIER = re.compile(r"(Código Ide ?ntificador:\s*\w+)")

# Text glued to a name that is not part of it (e.g. "VIÇOSA/AL SECRETARIA ...", 2022-01-17).
RE_NAME_SUFFIXES = re.compile(
    r"\s*(\/AL.*|GABINETE DO PREFEITO.*|PODER.*|http.*|PORTARIA.*|Extrato.*|ATA DE.*|SECRETARIA.*"
    r"|Fundo.*|SETOR.*|ERRATA.*|- AL.*|GABINETE.*|EXTRATO.*|SÚMULA.*|RATIFICAÇÃO.*)"
)

NAME_FIXES = {"MAJOR IZIDORO": "MAJOR ISIDORO"}

_LEADING_SPACE = re.compile(r"\s*")


def _first_line(text: str) -> str:
    r"""`text.lstrip().split("\n", 1)[0].rstrip()` without copying the whole text twice.

    `\s` in a str pattern and `str.lstrip()` both use Unicode whitespace (Py_UNICODE_ISSPACE).
    """
    match = _LEADING_SPACE.match(text)
    start = match.end() if match else 0
    end = text.find("\n", start)
    return text[start : end if end != -1 else len(text)].rstrip()


def normalize_territory_name(name: str) -> str:
    """Upstream's `_normalize_territory_name`: strip, join lines (no space), cut suffixes, fix."""
    clean = name.strip().replace("\n", "")
    clean = RE_NAME_SUFFIXES.sub("", clean)
    return NAME_FIXES.get(clean, clean)


def split_text_by_territory(text: str) -> dict[str, list[str]]:
    r"""Map each municipality slug to the parts of its segment text, in first-appearance order.

    `"".join(parts)` equals upstream's per-slug string: `f"{header}\n"`, then for every
    publication of that municipality `"\n"` + start marker + name + end marker + body.
    """
    header = _first_line(text)
    if not header:
        # Whitespace-only text: upstream splits on an empty pattern and finds no identifier,
        # i.e. zero segments. Return that directly instead of a one-string-per-char list.
        return {}
    # Upstream: "\n".join(re.split(re.escape(header), text)); a literal pattern splits exactly
    # where str.replace replaces, without the intermediate list.
    cleaned = text.replace(header, "\n")
    # Drop the trailer after the last identifier. The join also puts "\n" around each
    # identifier, and no identifier at all leaves empty text (zero segments), as upstream.
    pieces = RE_CODE_IDENTIFIER.split(cleaned)
    del cleaned
    cleaned = "\n".join(pieces[:-1])
    del pieces
    raw = RE_NOMES_MUNICIPIOS.split(cleaned)
    del cleaned

    parts_by_slug: dict[str, list[str]] = {}
    # raw[0] is the text before the first marker (dropped); then batches of 4:
    # (start marker, name, end marker, body).
    for i in range(1, len(raw), 4):
        batch = raw[i : i + 4]
        slug = territory_slug(normalize_territory_name(batch[1]), STATE_CODE)
        parts = parts_by_slug.setdefault(slug, [f"{header}\n"])
        parts.append("\n")
        parts.extend(batch)
    return parts_by_slug


class ALAssociationSegmenter:
    """Splits an AMA gazette into one segment per municipality (upstream's ALAssociacao...)."""

    territory_id = AL_ASSOCIATION_ID

    def __init__(self, territories: TerritoryIndex, max_text_chars: int) -> None:
        if max_text_chars <= 0:
            raise ValueError(f"max_text_chars must be positive, got {max_text_chars}")
        self._territories = territories
        self._max_text_chars = max_text_chars

    def segment(self, text: str, gazette: Mapping[str, Any], txt_url: TxtUrl) -> list[dict[str, Any]]:
        """Build every segment before returning, so an unknown municipality fails the whole gazette."""
        if len(text) > self._max_text_chars:
            raise SegmentTextTooLargeError(len(text), self._max_text_chars)
        parts_by_slug = split_text_by_territory(text)
        segments: list[dict[str, Any]] = []
        for slug in list(parts_by_slug):
            log.debug('Creating segment for territory "%s" from %s file.', slug, gazette.get("file_path"))
            territory = self._territories.lookup(slug)
            # pop: each segment's parts are released once its document holds the joined text.
            segments.append(build_segment(gazette, territory, parts_by_slug.pop(slug), txt_url))
        return segments
