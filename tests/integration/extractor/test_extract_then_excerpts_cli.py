"""Both stages through the CLI, as a Job pod runs them: extract, then excerpts in its own process."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from qd_devtools import fixtures as fx

pytestmark = [pytest.mark.integration, pytest.mark.rerank]

THEMES = {"themes": [{
    "name": "Licitações (teste)", "index": "", "stopwords": [],
    "entities": {"categories": [{"name": "entidadeteste", "description": "teste"}],
                 "cases": [{"category": "entidadeteste", "title": "Pregão", "values": ["pregão eletrônico"]}]},
    "queries": [{"title": "Pregão eletrônico", "term_sets": [[["licitação"], ["pregão eletrônico"]]]}]}]}


def test_extract_then_excerpts_cli(world, tmp_path: Path, model_path: str) -> None:  # type: ignore[no-untyped-def]
    theme_index = f"{world.index}-excerpts"
    themes = json.loads(json.dumps(THEMES))
    themes["themes"][0]["index"] = theme_index
    config = tmp_path / "themes.json"
    config.write_text(json.dumps(themes, ensure_ascii=False), encoding="utf-8")
    loaded = world.load([fx.text_pdf(seed=s) for s in range(40, 44)])
    env = {"QD_RUN_ID": "cli-run", "QD_THEMES_CONFIG": str(config), "QD_RERANK_MODEL": model_path,
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    try:
        first = world.run("extract", **env)
        assert first.returncode == 0, first.stdout[-2000:]
        second = world.run("excerpts", **env)
        assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
        with world.conn.cursor() as cur:
            cur.execute("SELECT state, count(*) FROM qd_gazette_state WHERE stage = 'excerpts' AND run_id = 'cli-run'"
                        " GROUP BY state")
            assert dict(cur.fetchall()) == {"succeeded": len(loaded)}
        requests.post(f"{world.opensearch}/{theme_index}/_refresh", timeout=30)
        hits = requests.post(f"{world.opensearch}/{theme_index}/_search", timeout=30,
                             json={"size": 100}).json()["hits"]["hits"]
        assert hits, "the fixtures' procurement notices must yield excerpts"
        for hit in hits:
            doc = hit["_source"]
            assert hit["_id"] == doc["excerpt_id"] and doc["excerpt_id"].startswith(doc["source_file_checksum"])
            assert doc["excerpt_subthemes"] == ["Pregão eletrônico"]
            assert doc["excerpt_embedding_score"] > 0
            assert "Pregão" in doc["excerpt_entities"]
        # The extract stage never imported torch; the excerpt stage ran in its own process.
        assert '"event_type": "range_summary"' in second.stdout
    finally:
        requests.delete(f"{world.opensearch}/{theme_index}", timeout=30)
