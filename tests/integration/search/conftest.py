"""Fixtures shared by the search integration tests (the real OpenSearch test node)."""

from __future__ import annotations

import os

import pytest
from opensearchpy import OpenSearch

from qd_extractor.search import SearchSettings, make_client


@pytest.fixture()
def client(opensearch_url: str) -> OpenSearch:
    """A client as the extractor makes it; the index name is the tests' own business."""
    return make_client(SearchSettings(host=opensearch_url, index="unused", user=os.environ.get("OPENSEARCH_USER"),
                                      password=os.environ.get("OPENSEARCH_PASSWORD")))
