"""Index bodies are upstream's, key for key and in the same order (tasks/create_index.py)."""

from __future__ import annotations

import json

from qd_extractor.search import excerpt_index_body, gazette_index_body

# Transcribed from okfn-brasil/querido-diario-data-processing tasks/create_index.py (the spec, not our code).
_FULL_TEXT = """{"type": "text", "analyzer": "brazilian", "index_options": "offsets",
  "term_vector": "with_positions_offsets", "fields": {
    "with_stopwords": {"type": "text", "analyzer": "brazilian_with_stopwords", "index_options": "offsets",
                       "term_vector": "with_positions_offsets"},
    "exact": {"type": "text", "analyzer": "exact", "index_options": "offsets",
              "term_vector": "with_positions_offsets"}}}"""
_ANALYSIS = """{"filter": {"brazilian_stemmer": {"type": "stemmer", "language": "brazilian"}},
  "analyzer": {"brazilian_with_stopwords": {"tokenizer": "standard", "filter": ["lowercase", "brazilian_stemmer"]},
               "exact": {"tokenizer": "standard", "filter": ["lowercase"]}}}"""
_KW = '{"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}'

UPSTREAM_GAZETTE = f"""{{"mappings": {{"properties": {{
  "created_at": {{"type": "date"}}, "date": {{"type": "date"}}, "edition_number": {_KW},
  "file_checksum": {{"type": "keyword"}}, "file_path": {{"type": "keyword"}}, "file_url": {{"type": "keyword"}},
  "id": {{"type": "keyword"}}, "is_extra_edition": {{"type": "boolean"}}, "power": {{"type": "keyword"}},
  "processed": {{"type": "boolean"}}, "scraped_at": {{"type": "date"}}, "source_text": {_FULL_TEXT},
  "state_code": {{"type": "keyword"}}, "territory_id": {{"type": "keyword"}}, "territory_name": {_KW},
  "url": {{"type": "keyword"}}}}}},
 "settings": {{"index": {{"sort.field": ["territory_id", "date"], "sort.order": ["asc", "desc"]}},
              "analysis": {_ANALYSIS}}}}}"""

_SOURCE_FIELDS = [("source_database_id", "long"), ("source_index_id", "keyword"), ("source_created_at", "date"),
                  ("source_date", "date"), ("source_edition_number", "keyword"),
                  ("source_file_checksum", "keyword"), ("source_file_path", "keyword"),
                  ("source_file_raw_txt", "keyword"), ("source_file_url", "keyword"),
                  ("source_is_extra_edition", "boolean"), ("source_power", "keyword"),
                  ("source_processed", "boolean"), ("source_scraped_at", "date"), ("source_state_code", "keyword"),
                  ("source_territory_id", "keyword"), ("source_territory_name", "keyword"),
                  ("source_url", "keyword")]
UPSTREAM_EXCERPT = ("""{"mappings": {"properties": {
  "excerpt_embedding_score": {"type": "rank_feature"}, "excerpt_subthemes": {"type": "keyword"},
  "excerpt_entities": {"type": "keyword"}, "excerpt": """ + _FULL_TEXT + """,
  "excerpt_id": {"type": "keyword"}, """
                    + ", ".join(f'"{name}": {{"type": "{kind}"}}' for name, kind in _SOURCE_FIELDS)
                    + """}},
 "settings": {"index": {"sort.field": ["source_territory_id", "source_date"], "sort.order": ["asc", "desc"]},
              "analysis": """ + _ANALYSIS + "}}")


def _canonical(obj: object) -> str:
    return json.dumps(obj)  # order-preserving: equal strings mean same keys, values and order


def test_gazette_body_is_upstreams_exactly() -> None:
    assert _canonical(gazette_index_body()) == _canonical(json.loads(UPSTREAM_GAZETTE))


def test_excerpt_body_is_upstreams_exactly() -> None:
    assert _canonical(excerpt_index_body()) == _canonical(json.loads(UPSTREAM_EXCERPT))


def test_gazette_spot_checks() -> None:
    body = gazette_index_body()
    props = body["mappings"]["properties"]
    assert "file_raw_txt" not in props  # left dynamic, as upstream
    # Never the init script's mapping: `exact` is analysed text (a keyword breaks on texts > 32766 bytes).
    assert props["source_text"]["fields"]["exact"]["type"] == "text"
    assert props["source_text"]["fields"]["with_stopwords"]["analyzer"] == "brazilian_with_stopwords"
    assert props["source_text"]["analyzer"] == "brazilian"
    assert body["settings"]["index"] == {"sort.field": ["territory_id", "date"], "sort.order": ["asc", "desc"]}
    assert "number_of_shards" not in json.dumps(body)  # shards/replicas left to OpenSearch defaults


def test_excerpt_spot_checks() -> None:
    props = excerpt_index_body()["mappings"]["properties"]
    assert props["excerpt_embedding_score"] == {"type": "rank_feature"}
    assert props["source_database_id"] == {"type": "long"}
    assert props["excerpt"]["fields"]["exact"]["term_vector"] == "with_positions_offsets"


def test_each_call_returns_a_fresh_body() -> None:
    first = gazette_index_body()
    first["settings"]["analysis"]["analyzer"]["exact"]["filter"].append("asciifolding")
    assert gazette_index_body()["settings"]["analysis"]["analyzer"]["exact"]["filter"] == ["lowercase"]
    assert excerpt_index_body()["settings"]["analysis"]["analyzer"]["exact"]["filter"] == ["lowercase"]
