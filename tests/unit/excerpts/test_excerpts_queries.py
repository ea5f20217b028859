"""Pure builders against upstream's exact shapes (tasks/gazette_themed_excerpts_extraction.py, …)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from qd_extractor.excerpts import queries
from qd_extractor.excerpts.themes import EntityCase, ThemeQuery

QUERY = ThemeQuery(title="Crimes Ambientais", term_sets=(
    (("lei federal", "lei"), ("9.605",)),
    (("crimes ambientais",),),
))


def _fake_tokens(term: str) -> list[str]:
    # What `_analyze` on source_text.with_stopwords does to these terms (lowercase + light stemming).
    return {"lei federal": ["lei", "federal"], "lei": ["lei"], "9.605": ["9.605"],
            "crimes ambientais": ["crim", "ambiental"]}[term]


def _phrase(*tokens: str) -> dict[str, Any]:
    return {"span_near": {"clauses": [{"span_term": {"source_text.with_stopwords": t}} for t in tokens],
                          "slop": 0, "in_order": True}}


# Upstream's body for this query and batch, written out by hand from its builder.
UPSTREAM_BODY: dict[str, Any] = {
    "query": {"bool": {
        "must": [{"span_or": {"clauses": [
            {"span_near": {"clauses": [
                {"span_or": {"clauses": [_phrase("lei", "federal"), _phrase("lei")]}},
                {"span_or": {"clauses": [_phrase("9.605")]}},
            ], "slop": 20, "in_order": False}},
            {"span_near": {"clauses": [
                {"span_or": {"clauses": [_phrase("crim", "ambiental")]}},
            ], "slop": 20, "in_order": False}},
        ]}}],
        "filter": {"ids": {"values": ["c1", "c2"]}},
    }},
    "size": 5,
    "highlight": {"fields": {"source_text.with_stopwords": {
        "type": "unified", "fragment_size": 2000, "number_of_fragments": 10, "pre_tags": [""], "post_tags": [""]}}},
}


def test_themed_search_is_upstreams_plus_a_source_filter() -> None:
    body = queries.themed_search(queries.span_clause(QUERY, _fake_tokens), ["c1", "c2"])
    source = body.pop("_source")
    assert body == UPSTREAM_BODY
    assert json.dumps(body, sort_keys=True) == json.dumps(UPSTREAM_BODY, sort_keys=True)
    assert sorted(source) == sorted({
        "file_checksum", "created_at", "id", "date", "edition_number", "file_raw_txt", "is_extra_edition",
        "file_path", "file_url", "power", "processed", "scraped_at", "state_code", "territory_id",
        "territory_name", "url"})


def test_no_body_ever_asks_for_the_gazette_text() -> None:
    case = EntityCase(category="entidadeteste", title="IBAMA", values=("ibama",))
    bodies = [queries.themed_search(queries.span_clause(QUERY, _fake_tokens), ["c1"]),
              queries.ids_search(["e1"], ["excerpt"]), queries.entity_search(case, ["e1"]),
              queries.missing_score_search()]
    for body in bodies:
        assert "_source" in body
        assert "source_text" not in json.dumps(body.get("_source"))
    assert "source_text" not in queries.GAZETTE_SOURCE_INCLUDES


GAZETTE = {"id": 42, "file_checksum": "abc123", "created_at": "2024-01-03T10:00:00", "date": "2024-01-02",
           "edition_number": "7", "file_raw_txt": "3550308/2024-01-02/x.txt", "is_extra_edition": False,
           "file_path": "3550308/2024-01-02/x.pdf", "file_url": "https://example.org/x.pdf", "power": "executive",
           "processed": False, "scraped_at": "2024-01-03T09:00:00", "state_code": "SP",
           "territory_id": "3550308", "territory_name": "São Paulo", "url": "files/3550308/2024-01-02/x.pdf"}


def _hit(fragments: list[str]) -> dict[str, Any]:
    return {"_id": "abc123", "_source": GAZETTE, "highlight": {"source_text.with_stopwords": fragments}}


def test_excerpt_documents_fields_and_ids() -> None:
    raw = "Lei  Federal nº 9.605,\n\tde 12 de fevereiro de 1998 " + "x" * 200
    (doc,) = queries.excerpt_documents(_hit([raw]), "Crimes Ambientais")
    assert list(doc) == [
        "excerpt", "excerpt_subthemes", "excerpt_id", "source_index_id", "source_created_at", "source_database_id",
        "source_date", "source_edition_number", "source_file_raw_txt", "source_is_extra_edition",
        "source_file_checksum", "source_file_path", "source_file_url", "source_power", "source_processed",
        "source_scraped_at", "source_state_code", "source_territory_id", "source_territory_name", "source_url"]
    assert doc["excerpt"] == "Lei Federal nº 9.605, de 12 de fevereiro de 1998 " + "x" * 200
    assert doc["excerpt_id"] == f"abc123_{hashlib.md5(raw.encode()).hexdigest()}"  # md5 of the RAW fragment
    assert doc["excerpt_subthemes"] == ["Crimes Ambientais"]
    assert doc["source_index_id"] == doc["source_file_checksum"] == "abc123"
    assert doc["source_database_id"] == 42
    assert doc["source_url"] == GAZETTE["url"] and doc["source_file_url"] == GAZETTE["file_url"]
    assert doc["source_edition_number"] == "7"  # not the date (an old upstream bug)
    for target, field in queries.SOURCE_FIELDS:
        assert doc[target] == GAZETTE[field]
    assert queries.doc_of_excerpt(doc["excerpt_id"]) == "abc123"


def test_fragments_under_200_clean_chars_are_dropped() -> None:
    keep = "a" * 200
    drop = "b" * 199
    padded = "c " + " \n\n  " * 60 + "c" * 150  # long raw, but only 153 chars once cleaned
    docs = queries.excerpt_documents(_hit([keep, drop, padded]), "T")
    assert [d["excerpt"] for d in docs] == [keep]
    assert queries.excerpt_documents({"_id": "x", "_source": GAZETTE}, "T") == []  # no highlight: skipped


def test_entity_search_is_upstreams() -> None:
    case = EntityCase(category="entidadeambiental", title="IBAMA",
                      values=("instituto brasileiro do meio ambiente", "ibama"))
    body = queries.entity_search(case, ["e1", "e2"], size=50)
    assert body.pop("_source") == ["excerpt_entities"]
    assert body == {
        "query": {"bool": {"should": [
            {"match_phrase": {"excerpt.with_stopwords": "instituto brasileiro do meio ambiente"}},
            {"match_phrase": {"excerpt.with_stopwords": "ibama"}}],
                           "filter": {"ids": {"values": ["e1", "e2"]}}}},
        "size": 50,
        "highlight": {"fields": {"excerpt.with_stopwords": {
            "type": "fvh", "matched_fields": ["excerpt", "excerpt.with_stopwords"], "fragment_size": 10000,
            "number_of_fragments": 1, "pre_tags": ["<entidadeambiental>"], "post_tags": ["</entidadeambiental>"]}}},
    }
    assert queries.entity_search(case, ["e1", "e2", "e3"])["size"] == 3  # one page per id batch


def test_other_bodies() -> None:
    assert queries.missing_score_search() == {
        "query": {"bool": {"must_not": {"exists": {"field": "excerpt_embedding_score"}}}}, "_source": False,
        "size": 1000}
    assert queries.ids_search(["a", "b"], ["excerpt"]) == {
        "query": {"bool": {"filter": {"ids": {"values": ["a", "b"]}}}}, "size": 2, "_source": ["excerpt"]}


@pytest.mark.parametrize(("text", "expected"), [
    ("CNPJ 12.345.678/0001-90.", "CNPJ <entidadecnpj>12.345.678/0001-90</entidadecnpj>."),
    ("CNPJ 12345678000190", "CNPJ <entidadecnpj>12345678000190</entidadecnpj>"),
    ("12345678/0001-90 no início", "<entidadecnpj>12345678/0001-90</entidadecnpj> no início"),
    ("no fim 12.345.678/000190", "no fim <entidadecnpj>12.345.678/000190</entidadecnpj>"),
    # the same CNPJ twice: every occurrence is tagged once
    ("A 11.222.333/0001-44 e B 11.222.333/0001-44",
     "A <entidadecnpj>11.222.333/0001-44</entidadecnpj> e B <entidadecnpj>11.222.333/0001-44</entidadecnpj>"),
    # upstream's boundaries are consumed: the second of two CNPJs one character apart is missed
    ("11.222.333/0001-44 55.666.777/0001-88",
     "<entidadecnpj>11.222.333/0001-44</entidadecnpj> 55.666.777/0001-88"),
])
def test_cnpj_tagging(text: str, expected: str) -> None:
    assert queries.tag_cnpjs(text) == expected


@pytest.mark.parametrize("text", [
    "sem cnpj aqui", "123456780001900 tem um dígito a mais", "CPF 123.456.789-09", "1234567800019",
    "telefone 3333-4444",
])
def test_no_cnpj_means_no_rewrite(text: str) -> None:
    assert queries.tag_cnpjs(text) is None


def test_merge_entities_is_a_sorted_union() -> None:
    assert queries.merge_entities(None, "IBAMA") == ["IBAMA"]
    assert queries.merge_entities(["SNUC", "IBAMA"], "CNPJ") == ["CNPJ", "IBAMA", "SNUC"]
    assert queries.merge_entities(["IBAMA"], "IBAMA") == ["IBAMA"]
