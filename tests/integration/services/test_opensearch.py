"""OpenSearch is real and has analysis-common: the `brazilian` analyzer stems Portuguese."""

from __future__ import annotations

import uuid

import pytest
import requests

pytestmark = pytest.mark.integration


def test_brazilian_analyzer_stems_portuguese(opensearch_url: str) -> None:
    resp = requests.post(f"{opensearch_url}/_analyze", timeout=30, json={
        "analyzer": "brazilian", "text": "As prefeituras municipais publicaram licitações de educação"})
    resp.raise_for_status()
    tokens = [t["token"] for t in resp.json()["tokens"]]
    # Stop words ("as", "de") are gone and the rest are stemmed.
    assert "as" not in tokens and "de" not in tokens
    assert tokens[0] == "prefeitur"
    assert "licit" in tokens


def test_index_with_brazilian_analyzer_matches_inflections(opensearch_url: str) -> None:
    index = f"smoke-{uuid.uuid4().hex[:8]}"
    body = {"mappings": {"properties": {"t": {"type": "text", "analyzer": "brazilian"}}}}
    requests.put(f"{opensearch_url}/{index}", json=body, timeout=30).raise_for_status()
    try:
        requests.put(f"{opensearch_url}/{index}/_doc/1?refresh=true", timeout=30,
                     json={"t": "Abertura de licitação para a Secretaria Municipal de Educação"}
                     ).raise_for_status()
        hits = requests.post(f"{opensearch_url}/{index}/_search", timeout=30,
                             json={"query": {"match": {"t": "licitações"}}}).json()["hits"]
        assert hits["total"]["value"] == 1
    finally:
        requests.delete(f"{opensearch_url}/{index}", timeout=30)


def test_disk_watermarks_are_off_on_the_test_node(opensearch_url: str) -> None:
    """On a shared test disk the 90 % watermark would block index creation for no reason."""
    settings = requests.get(f"{opensearch_url}/_cluster/settings", timeout=30).json()
    disk = settings["persistent"]["cluster"]["routing"]["allocation"]["disk"]
    assert disk["threshold_enabled"] == "false"
