"""Pure builders: upstream's search bodies and excerpt documents, with no I/O.

Parity (okfn-brasil/querido-diario-data-processing, `tasks/gazette_themed_excerpts_extraction.py`
and `tasks/gazette_excerpts_entities_tagging.py`): the span query, the highlight blocks, the entity
query, the excerpt id, the fields and the CNPJ regex are upstream's. One deliberate difference:
every search here carries a `_source` filter. Upstream's themed search returned the whole gazette
text (`source_text`) with every hit, though only highlights and a few metadata fields are used.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from qd_extractor.excerpts.themes import EntityCase, ThemeQuery

#: The gazette subfield every themed term is analysed with and searched in (stemmed, stopwords kept).
GAZETTE_FIELD = "source_text.with_stopwords"
#: The excerpt subfield entity values are matched and highlighted in.
EXCERPT_FIELD = "excerpt.with_stopwords"
#: Upstream drops shorter fragments (under 10 % of the 2000-char fragment size; few, yet scored high).
MIN_EXCERPT_CHARS = 200

#: (excerpt field, gazette `_source` field), in upstream's document order. `source_index_id` and
#: `source_file_checksum` both hold the gazette's `file_checksum`; `source_database_id` its `id`.
SOURCE_FIELDS: tuple[tuple[str, str], ...] = (
    ("source_index_id", "file_checksum"),
    ("source_created_at", "created_at"),
    ("source_database_id", "id"),
    ("source_date", "date"),
    ("source_edition_number", "edition_number"),
    ("source_file_raw_txt", "file_raw_txt"),
    ("source_is_extra_edition", "is_extra_edition"),
    ("source_file_checksum", "file_checksum"),
    ("source_file_path", "file_path"),
    ("source_file_url", "file_url"),
    ("source_power", "power"),
    ("source_processed", "processed"),
    ("source_scraped_at", "scraped_at"),
    ("source_state_code", "state_code"),
    ("source_territory_id", "territory_id"),
    ("source_territory_name", "territory_name"),
    ("source_url", "url"),
)

#: The only gazette fields a themed search brings back (never `source_text`).
GAZETTE_SOURCE_INCLUDES: tuple[str, ...] = tuple(sorted({field for _, field in SOURCE_FIELDS}))

#: Upstream's CNPJ pattern, verbatim (boundaries are consumed, so adjacent CNPJs separated by a
#: single character are found one out of two, as upstream).
CNPJ_REGEX = re.compile(
    r"""
    (^|[^\d])                                              # left boundary: start of string or not-a-digit
    (\d\.?\d\.?\d\.?\d\.?\d\.?\d\.?\d\.?\d/?\d{4}-?\d{2})  # cnpj
    ($|[^\d])                                              # right boundary: end of string or not-a-digit
    """,
    re.VERBOSE,
)
CNPJ_TITLE = "CNPJ"
CNPJ_TAG = "entidadecnpj"

Tokenizer = Callable[[str], Sequence[str]]


def span_clause(query: ThemeQuery, tokens: Tokenizer) -> dict[str, Any]:
    """The `must` clause for one theme query: macro sets OR'ed, term sets near, synonyms OR'ed, phrases exact."""
    macros: list[dict[str, Any]] = []
    for macro_set in query.term_sets:
        proximity: list[dict[str, Any]] = []
        for term_set in macro_set:
            synonyms: list[dict[str, Any]] = []
            for term in term_set:
                words = [{"span_term": {GAZETTE_FIELD: token}} for token in tokens(term)]
                synonyms.append({"span_near": {"clauses": words, "slop": 0, "in_order": True}})
            proximity.append({"span_or": {"clauses": synonyms}})
        macros.append({"span_near": {"clauses": proximity, "slop": 20, "in_order": False}})
    return {"span_or": {"clauses": macros}}


def themed_highlight() -> dict[str, Any]:
    """Upstream's highlight: up to 10 raw fragments of about 2000 chars, no tags."""
    return {
        "fields": {
            GAZETTE_FIELD: {
                "type": "unified",
                "fragment_size": 2000,
                "number_of_fragments": 10,
                "pre_tags": [""],
                "post_tags": [""],
            }
        },
    }


def themed_search(clause: Mapping[str, Any], doc_ids: Sequence[str], *, size: int = 5) -> dict[str, Any]:
    """The themed search over a batch of gazette documents (`size` is the page; upstream 5)."""
    return {
        "query": {"bool": {"must": [clause], "filter": {"ids": {"values": list(doc_ids)}}}},
        "size": size,
        "highlight": themed_highlight(),
        "_source": list(GAZETTE_SOURCE_INCLUDES),
    }


def excerpt_id(checksum: str, raw_fragment: str) -> str:
    """`{file_checksum}_{md5(raw fragment)}`: the md5 is of the fragment before whitespace cleaning."""
    return f"{checksum}_{hashlib.md5(raw_fragment.encode()).hexdigest()}"


def clean_fragment(fragment: str) -> str:
    """Upstream's `clean_extra_whitespaces`: every whitespace run becomes one space."""
    return re.sub(r"\s+", " ", fragment)


def excerpt_documents(hit: Mapping[str, Any], query_title: str) -> list[dict[str, Any]]:
    """The excerpt documents of one search hit (none without highlight; short fragments dropped)."""
    fragments = (hit.get("highlight") or {}).get(GAZETTE_FIELD) or []
    gazette: Mapping[str, Any] = hit.get("_source") or {}
    checksum = str(gazette.get("file_checksum") or hit["_id"])
    docs: list[dict[str, Any]] = []
    for raw in fragments:
        clean = clean_fragment(raw)
        if len(clean) < MIN_EXCERPT_CHARS:
            continue
        doc: dict[str, Any] = {"excerpt": clean, "excerpt_subthemes": [query_title],
                               "excerpt_id": excerpt_id(checksum, raw)}
        for target, field in SOURCE_FIELDS:
            doc[target] = gazette.get(field)
        docs.append(doc)
    return docs


def doc_of_excerpt(excerpt: str) -> str:
    """The gazette document id an excerpt id was built from."""
    return excerpt.rsplit("_", 1)[0]


def ids_search(ids: Sequence[str], source: Sequence[str]) -> dict[str, Any]:
    """Fetch documents by id, with only the `source` fields (upstream's ids filter, one page)."""
    return {"query": {"bool": {"filter": {"ids": {"values": list(ids)}}}}, "size": len(ids),
            "_source": list(source)}


def missing_score_search(size: int = 1000) -> dict[str, Any]:
    """Upstream's `embedding_rerank` pipeline: excerpts without a score, ids only."""
    return {"query": {"bool": {"must_not": {"exists": {"field": "excerpt_embedding_score"}}}},
            "_source": False, "size": size}


def entity_search(case: EntityCase, ids: Sequence[str], *, size: int | None = None,
                  only_matches: bool = False) -> dict[str, Any]:
    """Upstream's entity query for one case; the fvh highlight wraps matches in `<category>` tags.

    `fvh` over `matched_fields` tags whole phrases (with stopwords) rather than single tokens. As
    upstream, the filter returns every excerpt of the batch, matching or not, and only hits with a
    highlight count; `only_matches` (`minimum_should_match: 1`) returns just the excerpts where a
    value occurs as a phrase, which are the ones that can get a highlight (the `excerpt` field in
    `matched_fields` has the same stemmer and keeps positions, so it never matches where
    `excerpt.with_stopwords` does not).
    """
    match: dict[str, Any] = {"should": [{"match_phrase": {EXCERPT_FIELD: value}} for value in case.values],
                             "filter": {"ids": {"values": list(ids)}}}
    if only_matches:
        match["minimum_should_match"] = 1
    return {
        "query": {"bool": match},
        "size": len(ids) if size is None else size,
        "highlight": {
            "fields": {
                EXCERPT_FIELD: {
                    "type": "fvh",
                    "matched_fields": ["excerpt", EXCERPT_FIELD],
                    "fragment_size": 10000,
                    "number_of_fragments": 1,
                    "pre_tags": [f"<{case.category}>"],
                    "post_tags": [f"</{case.category}>"],
                }
            },
        },
        "_source": ["excerpt_entities"],
    }


def merge_entities(old: Any, title: str) -> list[str]:
    """`set(old) | {title}`, sorted so the stored list is deterministic (upstream's set order is not)."""
    return sorted({*(old or []), title})


def tag_cnpjs(text: str) -> str | None:
    """Wrap every distinct CNPJ in `<entidadecnpj>` tags; None when the text has none (no rewrite)."""
    found = CNPJ_REGEX.findall(text)
    if not found:
        return None
    for cnpj in sorted({match[1] for match in found}):
        text = text.replace(cnpj, f"<{CNPJ_TAG}>{cnpj}</{CNPJ_TAG}>")
    return text
