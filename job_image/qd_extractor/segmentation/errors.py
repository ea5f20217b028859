"""Errors raised by segmentation; the caller maps each to a gazette outcome."""

from __future__ import annotations


class SegmentationError(Exception):
    """Base class: the aggregated gazette could not be split, nothing may be indexed."""


class UnknownTerritoryError(SegmentationError, LookupError):
    """A municipality slug found in the text is not in the territories table.

    The message keeps upstream's wording (`Couldn't find info for "<slug>"`) so logs stay greppable.
    LookupError (not KeyError) keeps `str(exc)` free of KeyError's extra quoting.
    """

    def __init__(self, slug: str) -> None:
        self.slug = slug
        super().__init__(f'Couldn\'t find info for "{slug}"')


class NoSegmenterError(SegmentationError, LookupError):
    """No segmenter exists for this territory id (upstream: KeyError in the factory)."""

    def __init__(self, territory_id: str, known: tuple[str, ...]) -> None:
        self.territory_id = territory_id
        kinds = ", ".join(known) or "none"
        if territory_id[-5:].strip() == "00000":
            reason = f"no segmenter for association territory {territory_id!r}"
        else:
            reason = f"territory {territory_id!r} is not an association (id does not end in 00000)"
        super().__init__(f"{reason}; segmenters exist only for: {kinds}")


class SegmentTextTooLargeError(SegmentationError):
    """The text is above the configured limit; segmenting it could exceed the pod's memory."""

    def __init__(self, size_chars: int, limit_chars: int) -> None:
        self.size_chars = size_chars
        self.limit_chars = limit_chars
        super().__init__(
            f"aggregated gazette text too large to segment: {size_chars} characters "
            f"> limit {limit_chars} characters (segmentation holds the whole text in memory)"
        )
