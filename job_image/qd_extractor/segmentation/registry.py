"""Which segmenter handles which aggregated ("association", `XX00000`) territory."""

from __future__ import annotations

from collections.abc import Callable

from .ama import AL_ASSOCIATION_ID, ALAssociationSegmenter
from .base import Segmenter
from .errors import NoSegmenterError
from .territories import TerritoryIndex

ASSOCIATION_SUFFIX = "00000"

# Upstream's factory knows only the AL association; every other XX00000 id is an error there too.
_SEGMENTERS: dict[str, Callable[[TerritoryIndex, int], Segmenter]] = {
    AL_ASSOCIATION_ID: ALAssociationSegmenter,
}


def is_association(territory_id: str) -> bool:
    """Upstream's aggregated-gazette test: `str(territory_id[-5:]).strip() == "00000"`."""
    return territory_id[-5:].strip() == ASSOCIATION_SUFFIX


def known_association_ids() -> tuple[str, ...]:
    """Association territory ids that can be segmented."""
    return tuple(sorted(_SEGMENTERS))


def get_segmenter(territory_id: str, *, territories: TerritoryIndex, max_text_chars: int) -> Segmenter:
    """Return the segmenter for `territory_id` or raise NoSegmenterError naming it.

    Segmenters are cheap and stateless apart from their configuration, so none is cached.
    """
    factory = _SEGMENTERS.get(territory_id)
    if factory is None:
        raise NoSegmenterError(territory_id, known_association_ids())
    return factory(territories, max_text_chars)
