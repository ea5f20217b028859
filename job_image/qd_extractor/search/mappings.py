"""Create-index bodies for the gazette index and the themed-excerpt indexes.

These are upstream's bodies (`tasks/create_index.py` in okfn-brasil/querido-diario-data-processing),
same keys, same order, same values: the API and the theme queries depend on the analyzers, the
`with_stopwords`/`exact` subfields and the offsets/term vectors used by the highlighters. Never use the
docker-compose init script's mapping (`source_text.exact` as keyword breaks on long texts).
Both functions return a fresh dict on every call, so callers may mutate their copy.
"""

from __future__ import annotations

from typing import Any


def _analysis() -> dict[str, Any]:
    """The analysis block shared by both indexes (`brazilian_stemmer`, `brazilian_with_stopwords`, `exact`)."""
    return {
        "filter": {
            "brazilian_stemmer": {
                "type": "stemmer",
                "language": "brazilian",
            }
        },
        "analyzer": {
            "brazilian_with_stopwords": {
                "tokenizer": "standard",
                "filter": ["lowercase", "brazilian_stemmer"],
            },
            "exact": {
                "tokenizer": "standard",
                "filter": ["lowercase"],
            },
        },
    }


def _full_text_field() -> dict[str, Any]:
    """`source_text` / `excerpt`: stemmed main field plus the two subfields, all with offsets and term vectors."""
    return {
        "type": "text",
        "analyzer": "brazilian",
        "index_options": "offsets",
        "term_vector": "with_positions_offsets",
        "fields": {
            "with_stopwords": {
                "type": "text",
                "analyzer": "brazilian_with_stopwords",
                "index_options": "offsets",
                "term_vector": "with_positions_offsets",
            },
            "exact": {
                "type": "text",
                "analyzer": "exact",
                "index_options": "offsets",
                "term_vector": "with_positions_offsets",
            },
        },
    }


def _text_with_keyword() -> dict[str, Any]:
    return {
        "type": "text",
        "fields": {"keyword": {"type": "keyword", "ignore_above": 256}},
    }


def _settings(sort_fields: list[str]) -> dict[str, Any]:
    # Index sort can only be set at creation time; upstream sorts by territory asc, date desc.
    return {
        "index": {
            "sort.field": sort_fields,
            "sort.order": ["asc", "desc"],
        },
        "analysis": _analysis(),
    }


def gazette_index_body() -> dict[str, Any]:
    """Upstream's `create_gazettes_index` body. `file_raw_txt` is deliberately unmapped (dynamic)."""
    return {
        "mappings": {
            "properties": {
                "created_at": {"type": "date"},
                "date": {"type": "date"},
                "edition_number": _text_with_keyword(),
                "file_checksum": {"type": "keyword"},
                "file_path": {"type": "keyword"},
                "file_url": {"type": "keyword"},
                "id": {"type": "keyword"},
                "is_extra_edition": {"type": "boolean"},
                "power": {"type": "keyword"},
                "processed": {"type": "boolean"},
                "scraped_at": {"type": "date"},
                "source_text": _full_text_field(),
                "state_code": {"type": "keyword"},
                "territory_id": {"type": "keyword"},
                "territory_name": _text_with_keyword(),
                "url": {"type": "keyword"},
            }
        },
        "settings": _settings(["territory_id", "date"]),
    }


def excerpt_index_body() -> dict[str, Any]:
    """Upstream's `create_themed_excerpts_index` body (one index per theme, named by `theme["index"]`)."""
    return {
        "mappings": {
            "properties": {
                "excerpt_embedding_score": {"type": "rank_feature"},
                "excerpt_subthemes": {"type": "keyword"},
                "excerpt_entities": {"type": "keyword"},
                "excerpt": _full_text_field(),
                "excerpt_id": {"type": "keyword"},
                "source_database_id": {"type": "long"},
                "source_index_id": {"type": "keyword"},
                "source_created_at": {"type": "date"},
                "source_date": {"type": "date"},
                "source_edition_number": {"type": "keyword"},
                "source_file_checksum": {"type": "keyword"},
                "source_file_path": {"type": "keyword"},
                "source_file_raw_txt": {"type": "keyword"},
                "source_file_url": {"type": "keyword"},
                "source_is_extra_edition": {"type": "boolean"},
                "source_power": {"type": "keyword"},
                "source_processed": {"type": "boolean"},
                "source_scraped_at": {"type": "date"},
                "source_state_code": {"type": "keyword"},
                "source_territory_id": {"type": "keyword"},
                "source_territory_name": {"type": "keyword"},
                "source_url": {"type": "keyword"},
            }
        },
        "settings": _settings(["source_territory_id", "source_date"]),
    }
