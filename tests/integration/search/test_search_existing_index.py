"""An existing index mapped otherwise than upstream creates it is reported, field by field, and still used."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
from opensearchpy import OpenSearch

from qd_extractor.search import ensure_index, excerpt_index_body, gazette_index_body
from qd_extractor.search.client import MAPPING_MISMATCH
from qd_testkit import ListHandler

pytestmark = pytest.mark.integration

#: The mapping of upstream's init script (`create-opensearch-index.sh`, §6 of upstream-pipeline.md):
#: `source_text.exact` is a keyword and there is no `with_stopwords` subfield.
INIT_SCRIPT_BODY = {"settings": {"number_of_shards": 1, "number_of_replicas": 0},
                    "mappings": {"properties": {
                        "source_text": {"type": "text", "fields": {"exact": {"type": "keyword"}}},
                        "territory_id": {"type": "keyword"}, "date": {"type": "date"}}}}


@pytest.fixture()
def index(client: OpenSearch) -> Iterator[str]:
    name = f"t-mapcheck-{uuid.uuid4().hex[:10]}"
    yield name
    client.indices.delete(index=name, ignore_unavailable=True)


@pytest.fixture()
def logged() -> Iterator[ListHandler]:
    handler = ListHandler()
    log = logging.getLogger("qd_extractor.search")
    log.addHandler(handler)
    yield handler
    log.removeHandler(handler)


@pytest.mark.parametrize("body", [gazette_index_body, excerpt_index_body])
def test_an_index_we_created_matches_its_body(client: OpenSearch, index: str, logged: ListHandler,
                                              body: object) -> None:
    assert ensure_index(client, index, body()) is True  # type: ignore[operator]
    assert ensure_index(client, index, body()) is False  # type: ignore[operator]
    assert logged.events(MAPPING_MISMATCH) == []


def test_the_init_script_mapping_is_reported_and_left_alone(client: OpenSearch, index: str,
                                                            logged: ListHandler) -> None:
    client.indices.create(index=index, body=INIT_SCRIPT_BODY)
    assert ensure_index(client, index, gazette_index_body()) is False
    (event,) = logged.events(MAPPING_MISMATCH)
    assert event.levelno == logging.ERROR and event.index_name == index  # type: ignore[attr-defined]
    problems = event.problems  # type: ignore[attr-defined]
    assert "source_text.with_stopwords: missing" in problems
    assert "source_text.exact: type is 'keyword', expected 'text'" in problems
    assert "source_text: term_vector is 'no', expected 'with_positions_offsets'" in problems
    assert any(p.startswith("file_checksum: missing") for p in problems)
    # Left alone: the mapping is unchanged.
    props = client.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert props["source_text"]["fields"] == {"exact": {"type": "keyword"}}
