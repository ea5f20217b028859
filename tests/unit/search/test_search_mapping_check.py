"""mapping_check.differences: what counts as a different mapping."""

from __future__ import annotations

from qd_extractor.search.mapping_check import differences, index_differences
from qd_extractor.search.mappings import gazette_index_body


def test_same_mapping_and_extra_fields_are_fine() -> None:
    props = gazette_index_body()["mappings"]["properties"]
    assert differences(props, {**props, "file_raw_txt": {"type": "text"}}) == []


def test_defaults_left_out_by_opensearch_count_as_their_value() -> None:
    assert differences({"a": {"type": "text", "term_vector": "no"}}, {"a": {"type": "text"}}) == []
    assert differences({"a": {"type": "text", "term_vector": "yes"}}, {"a": {"type": "text"}}) == [
        "a: term_vector is 'no', expected 'yes'"]


def test_subfields_and_object_properties_are_walked() -> None:
    want = {"o": {"properties": {"x": {"type": "keyword"}}}, "t": {"type": "text", "fields": {"k": {"type": "text"}}}}
    have = {"o": {"properties": {"x": {"type": "long"}}}, "t": {"type": "text"}}
    assert differences(want, have) == ["o.x: type is 'long', expected 'keyword'", "t.k: missing"]


def test_the_answer_is_keyed_by_the_concrete_index() -> None:
    body = {"mappings": {"properties": {"a": {"type": "keyword"}}}}
    answer = {"real-index-v2": {"mappings": {"properties": {"a": {"type": "text"}}}}}
    assert index_differences(answer, "alias", body) == ["a: type is 'text', expected 'keyword'"]
    assert index_differences({}, "alias", body) == ["alias: no mapping returned"]
