"""Compare an existing index's mapping with the one we would create.

`ensure_index` never changes an existing index (as upstream), so an index made by upstream's
init script (`source_text.exact` as keyword: long texts fail with "immense term"; no
`with_stopwords`: theme queries find nothing) would otherwise fail gazettes and excerpts silently.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The properties of a field that decide what it can hold and how it is searched.
_CHECKED = ("type", "analyzer", "term_vector", "index_options")


def differences(expected: Mapping[str, Any], actual: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Every expected field (and subfield) missing from `actual` or mapped otherwise; extra fields are fine."""
    found: list[str] = []
    for name, want in expected.items():
        path = f"{prefix}{name}"
        have = actual.get(name)
        if have is None:
            found.append(f"{path}: missing")
            continue
        for key in _CHECKED:
            if key in want and have.get(key, _default(key)) != want[key]:
                found.append(f"{path}: {key} is {have.get(key, _default(key))!r}, expected {want[key]!r}")
        found += differences(want.get("properties", {}), have.get("properties", {}), f"{path}.")
        found += differences(want.get("fields", {}), have.get("fields", {}), f"{path}.")
    return found


def _default(key: str) -> Any:
    """What OpenSearch leaves out of a mapping when the setting is its default."""
    return {"type": "object", "analyzer": "default", "term_vector": "no", "index_options": "positions"}.get(key)


def index_differences(mapping_response: Mapping[str, Any], index: str, body: Mapping[str, Any]) -> list[str]:
    """`differences` for a GET `_mapping` answer (keyed by the concrete index name, maybe behind an alias)."""
    if not mapping_response:
        return [f"{index}: no mapping returned"]
    actual = next(iter(mapping_response.values())).get("mappings", {}).get("properties", {})
    return differences(body.get("mappings", {}).get("properties", {}), actual)
