"""How the excerpts stage ends each gazette: outages release, errors stay per gazette, nothing to do is skipped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from excerpts_world import (
    BOTH,
    CRIMES,
    SCHOOL,
    SMALL_THEMES,
    World,
    all_docs,
    stage_logger,
    themes_file,
)
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError

from qd_core.states import ErrorClass
from qd_extractor.excerpts.app import run_excerpts
from qd_extractor.search import SearchUnavailableError

pytestmark = [pytest.mark.integration, pytest.mark.rerank]

def test_outage_releases_claimed_gazettes(world: World, client: OpenSearch, names: Any, write_themes: Any) -> None:
    path, _ = themes_file(SMALL_THEMES, names, write_themes)
    world.env["QD_THEMES_CONFIG"] = str(path)
    world.gazette(101, "3550308", [CRIMES])
    world.gazette(102, "3550308", [BOTH])
    real = client.transport.perform_request

    def flaky(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if url == f"/{world.gazette_index}/_msearch":  # the cluster goes away at the first themed search
            raise OSConnectionError("N/A", "connection refused", Exception("refused"))
        return real(method, url, *args, **kwargs)

    client.transport.perform_request = flaky  # type: ignore[method-assign]
    with pytest.raises(SearchUnavailableError):
        run_excerpts(world.settings(), 100, 200, stage_logger(), search=client)
    # Put back to pending without burning an attempt: the next run takes them again.
    for gid in (101, 102):
        assert world.state(gid) == ("pending", None, False)
    client.transport.perform_request = real  # type: ignore[method-assign]
    assert run_excerpts(world.settings(), 100, 200, stage_logger(), search=client).succeeded == 2
    with world.conn.cursor() as cur:
        cur.execute("SELECT attempts FROM qd_gazette_state WHERE stage = 'excerpts' ORDER BY gazette_id")
        assert [r[0] for r in cur.fetchall()] == [1, 1]



def test_a_model_that_cannot_load_stops_the_run(world: World, client: OpenSearch, names: Any, write_themes: Any,
                                                tmp_path: Path) -> None:
    from qd_extractor.excerpts.rerank import EmbeddingScorer, RerankModelError

    path, _ = themes_file(SMALL_THEMES, names, write_themes)
    world.env["QD_THEMES_CONFIG"] = str(path)
    world.gazette(101, "3550308", [CRIMES])
    broken = tmp_path / "broken-model"
    broken.mkdir()
    with pytest.raises(RerankModelError):
        run_excerpts(world.settings(), 100, 200, stage_logger(), search=client, scorer=EmbeddingScorer(str(broken)))
    assert world.state(101) == ("pending", None, False)  # not failed: the configuration is at fault



def test_missing_gazette_index_is_a_config_error(world: World, client: OpenSearch, names: Any,
                                                 write_themes: Any) -> None:
    from qd_core.config import ConfigError

    path, _ = themes_file(SMALL_THEMES, names, write_themes)
    world.env["QD_THEMES_CONFIG"] = str(path)
    world.gazette(101, "3550308", [CRIMES])
    missing = names("missing")
    with pytest.raises(ConfigError, match=f"OPENSEARCH_INDEX={missing}: the gazette index does not exist"):
        run_excerpts(world.settings(OPENSEARCH_INDEX=missing), 100, 200, stage_logger(), search=client)
    assert world.state(101) is None  # checked before any gazette is claimed



def test_msearch_error_items_fail_only_their_gazettes(world: World, client: OpenSearch, names: Any,
                                                      write_themes: Any) -> None:
    """An error item inside an `_msearch` answer (HTTP 200 overall) is recorded, not fatal to the range.

    The themed search of one gazette document fails: the batch is bisected down to it. An entity
    search of the other theme fails: that theme's step fails for its gazette. Everyone else succeeds.
    """
    path, idx = themes_file(SMALL_THEMES, names, write_themes)
    world.env["QD_THEMES_CONFIG"] = str(path)
    world.gazette(101, "3550308", [CRIMES])
    world.gazette(102, "3550308", [BOTH])
    world.gazette(106, "3550308", [SCHOOL])
    bad_doc = world.doc_ids[102][0]
    real = client.transport.perform_request
    injected: list[str] = []

    def with_error_items(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        response = real(method, url, *args, **kwargs)
        if not url.endswith("/_msearch"):
            return response
        bodies = [json.loads(line) for line in kwargs["body"].splitlines() if line.strip()][1::2]
        for i, body in enumerate(bodies):
            text = json.dumps(body)
            themed_bad = "source_text.with_stopwords" in text and bad_doc in text
            entity_edu = url == f"/{idx['@edu']}/_msearch" and "match_phrase" in text
            if themed_bad or entity_edu:
                injected.append("themed" if themed_bad else "entity")
                response["responses"][i] = {"status": 400, "error": {
                    "type": "search_phase_execution_exception", "reason": "injected"}}
        return response

    client.transport.perform_request = with_error_items  # type: ignore[method-assign]
    try:
        summary = run_excerpts(world.settings(), 100, 200, stage_logger(), search=client)
    finally:
        client.transport.perform_request = real  # type: ignore[method-assign]

    assert "themed" in injected and "entity" in injected
    assert (summary.seen, summary.succeeded, summary.failed, summary.terminal) == (3, 1, 2, 0)
    assert world.state(101) == ("succeeded", None, False)
    assert world.state(102) == ("failed", ErrorClass.SEARCH.value, False)  # retried by a later run
    assert world.state(106) == ("failed", ErrorClass.SEARCH.value, False)
    assert {d["source_database_id"] for d in all_docs(client, idx["@amb"]).values()} == {101}


def test_gazette_without_documents_is_skipped_not_searched(world: World, client: OpenSearch, names: Any,
                                                            write_themes: Any) -> None:
    """An extraction that indexed nothing (an association text without segments) ends `skipped`, once."""
    path, _ = themes_file(SMALL_THEMES, names, write_themes)
    world.env["QD_THEMES_CONFIG"] = str(path)
    world.gazette(101, "3550308", [CRIMES])
    world.gazette(102, "2700000", [])  # extract succeeded with no document
    summary = run_excerpts(world.settings(), 100, 200, stage_logger(), search=client)
    assert (summary.seen, summary.succeeded, summary.skipped, summary.failed) == (2, 1, 1, 0)
    assert world.state(101) == ("succeeded", None, False)
    assert world.state(102) == ("skipped", None, False)
    with world.conn.cursor() as cur:
        cur.execute("SELECT error_message FROM qd_gazette_state WHERE gazette_id = 102 AND stage = 'excerpts'")
        assert "no indexed document" in cur.fetchone()[0]
    # Skipped counts as done: a second run of the range selects neither gazette.
    again = run_excerpts(world.settings(), 100, 200, stage_logger(), search=client)
    assert (again.seen, again.skipped) == (0, 0)
