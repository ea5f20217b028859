"""Territory lookup by upstream's slug, built once from the `territories` table.

Segment territory ids must match upstream's exactly, so the slug parameters are copied from
upstream's `tasks/utils/territories.py::get_territory_slug` (python-slugify's legacy algorithm,
Unidecode backend). Changing any of them changes which municipality a segment is attributed to.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TypedDict

from slugify import slugify

from .errors import UnknownTerritoryError

SLUG_STOPWORDS = ("de", "d", "da", "do", "das", "dos")
# ACUTE ACCENT (U+00B4) and GRAVE ACCENT (U+0060) typed as apostrophes become "'" before slugifying.
SLUG_REPLACEMENTS = (("\u00b4", "'"), ("`", "'"))


class Territory(TypedDict):
    """One `territories` row, keyed as upstream's `_format_territories_data` does."""

    id: str
    territory_name: str
    state_code: str
    state: str


def territory_slug(name: str, state_code: str) -> str:
    """Upstream's slug: `("Maceió", "AL")` -> `"almaceio"`."""
    slug: str = slugify(
        f"{state_code} {name}",
        separator="",
        stopwords=SLUG_STOPWORDS,
        replacements=SLUG_REPLACEMENTS,
    )
    return slug


def territory_from_row(row: Sequence[Any]) -> Territory:
    """Map a `SELECT * FROM territories` row by position, as upstream does."""
    if len(row) < 4:
        raise ValueError(f"territory row needs (id, name, state_code, state), got {len(row)} columns")
    return Territory(id=row[0], territory_name=row[1], state_code=row[2], state=row[3])


class TerritoryIndex:
    """Slug -> territory map. Build once per process; lookups are O(1).

    On a slug collision the last row wins, like upstream's dict comprehension.
    """

    def __init__(self, territories: Iterable[Territory]) -> None:
        self._by_slug: dict[str, Territory] = {
            territory_slug(t["territory_name"], t["state_code"]): t for t in territories
        }

    @classmethod
    def from_rows(cls, rows: Iterable[Sequence[Any]]) -> TerritoryIndex:
        """Build from raw `(id, name, state_code, state)` rows."""
        return cls(territory_from_row(row) for row in rows)

    def lookup(self, slug: str) -> Territory:
        """Return a copy of the territory for `slug` or raise UnknownTerritoryError."""
        try:
            return self._by_slug[slug].copy()
        except KeyError:
            raise UnknownTerritoryError(slug) from None

    def find(self, name: str, state_code: str) -> Territory:
        """Look up by name and state code (slugified first)."""
        return self.lookup(territory_slug(name, state_code))

    def __contains__(self, slug: object) -> bool:
        return slug in self._by_slug

    def __len__(self) -> int:
        return len(self._by_slug)

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_slug)
