"""Segmentation of aggregated (association, `XX00000`) gazettes into per-municipality documents.

Behaviour is upstream's (`segmentation/` in querido-diario-data-processing): same split, same
segment texts, md5 ids, territory ids and storage keys. Only the AL association (2700000) has a
segmenter; any other association id raises NoSegmenterError, and an unknown municipality raises
UnknownTerritoryError before any segment is returned.

Memory rule: segmentation is not streaming. The regexes must see the whole text (a name may
span lines, the trailer is cut at the *last* identifier), so the text is held in memory and the
segment documents together hold about one more copy. Measured peak is the text plus about two
copies (PEAK_TEXT_COPIES = 3 in total), at 1, 2 or 4 bytes per character depending on the widest
character in the text. Every segmenter therefore takes `max_text_chars` and raises
SegmentTextTooLargeError above it, before allocating anything; the caller maps that error to a
terminal "too large" outcome. Size the limit from the pod budget with `max_text_chars_for()`.
"""

from .ama import AL_ASSOCIATION_ID, ALAssociationSegmenter, normalize_territory_name, split_text_by_territory
from .base import (
    DEFAULT_MAX_TEXT_CHARS,
    PEAK_TEXT_COPIES,
    SEGMENT_FIELDS,
    WORST_BYTES_PER_CHAR,
    Segmenter,
    TxtUrl,
    build_segment,
    max_text_chars_for,
    segment_key,
)
from .errors import NoSegmenterError, SegmentationError, SegmentTextTooLargeError, UnknownTerritoryError
from .registry import get_segmenter, is_association, known_association_ids
from .territories import Territory, TerritoryIndex, territory_slug

__all__ = [
    "AL_ASSOCIATION_ID",
    "DEFAULT_MAX_TEXT_CHARS",
    "PEAK_TEXT_COPIES",
    "SEGMENT_FIELDS",
    "WORST_BYTES_PER_CHAR",
    "ALAssociationSegmenter",
    "NoSegmenterError",
    "SegmentTextTooLargeError",
    "SegmentationError",
    "Segmenter",
    "Territory",
    "TerritoryIndex",
    "TxtUrl",
    "UnknownTerritoryError",
    "build_segment",
    "get_segmenter",
    "is_association",
    "known_association_ids",
    "max_text_chars_for",
    "normalize_territory_name",
    "segment_key",
    "split_text_by_territory",
    "territory_slug",
]
