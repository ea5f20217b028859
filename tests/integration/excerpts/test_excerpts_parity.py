"""The excerpts stage matches upstream's algorithm on real OpenSearch and PostgreSQL.

Gazette documents are indexed with the real gazette mapping; the state table says their extraction
succeeded; the stage then extracts, reranks (a real sentence model) and tags. The same gazettes go
through upstream's replay (conftest) into other indexes, and both results must be the same documents,
reached with far fewer requests and no full text transferred.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from excerpts_world import (
    APPENDIX,
    BOTH,
    CRIMES,
    NOTHING,
    SCHOOL,
    SHORT,
    SMALL_THEMES,
    World,
    all_docs,
    assert_same_as_upstream,
    comparable,
    stage_logger,
    themes_file,
)
from opensearchpy import OpenSearch

from qd_core.states import ErrorClass
from qd_extractor.excerpts import themes as themes_mod
from qd_extractor.excerpts.app import run_excerpts, run_rerank_repair

pytestmark = [pytest.mark.integration, pytest.mark.rerank]

def test_stage_matches_upstream_with_bounded_requests(world: World, client: OpenSearch, names: Any,
                                                      write_themes: Any, upstream: Any, record: Any) -> None:
    path, idx = themes_file(SMALL_THEMES, names, write_themes)
    world.env["QD_THEMES_CONFIG"] = str(path)
    world.gazette(101, "3550308", [CRIMES + APPENDIX])
    world.gazette(102, "3550308", [BOTH])
    world.gazette(103, "3550308", [NOTHING])
    world.gazette(104, "3550308", [SHORT])
    world.gazette(105, "2700000", [CRIMES.replace("PREFEITURA", "MACEIÓ"), BOTH + " Arapiraca."])
    world.gazette(106, "3550308", [SCHOOL])
    world.gazette(107, "3550308", [CRIMES + " Ato 107."], db_id="not-a-number")  # refused by source_database_id
    world.gazette(108, "3550308", [CRIMES + " Ato 108."], extract="failed")  # extraction not done: not selected
    world.gazette(300, "3550308", [CRIMES + " Ato 300."])  # outside the range
    settings = world.settings()
    recorder = record(client)

    summary = run_excerpts(settings, 100, 200, stage_logger(), search=client)
    ours = list(recorder.requests)

    assert (summary.seen, summary.succeeded, summary.failed, summary.terminal) == (7, 6, 1, 1)
    for gid in (101, 102, 103, 104, 105, 106):
        assert world.state(gid) == ("succeeded", None, False), gid
    assert world.state(107) == ("failed", ErrorClass.REJECTED.value, True)
    assert world.state(108) is None and world.state(300) is None

    amb = all_docs(client, idx["@amb"])
    by_doc: dict[str, list[dict[str, Any]]] = {}
    for eid, doc in amb.items():
        assert eid == doc["excerpt_id"] and eid.startswith(doc["source_file_checksum"] + "_")
        by_doc.setdefault(doc["source_file_checksum"], []).append(doc)
    assert set(by_doc) == {*world.doc_ids[101], *world.doc_ids[102], *world.doc_ids[105]}
    (crimes,) = by_doc[world.doc_ids[101][0]]
    assert crimes["excerpt_subthemes"] == ["Crimes Ambientais"]
    assert sorted(crimes["excerpt_entities"]) == ["CNPJ", "IBAMA", "Secretaria de Meio Ambiente"]
    assert "apoio do <entidadeambiental>IBAMA</entidadeambiental> e da " in crimes["excerpt"]
    assert "<entidadeambiental>Secretaria de Meio Ambiente</entidadeambiental>" in crimes["excerpt"]
    assert "CNPJ <entidadecnpj>12.345.678/0001-90</entidadecnpj>, em" in crimes["excerpt"]
    assert "\n" not in crimes["excerpt"] and 0 < crimes["excerpt_embedding_score"] <= 1
    assert crimes["source_database_id"] == 101 and crimes["source_processed"] is False
    assert crimes["source_date"] == "2024-01-18" and crimes["source_scraped_at"] == "2024-02-01T12:30:00"
    assert crimes["source_territory_name"] == "São Paulo" and crimes["source_url"].startswith("files/3550308/")
    (both,) = by_doc[world.doc_ids[102][0]]
    assert both["excerpt_subthemes"] == ["Saneamento"]  # matched by both queries: the last one wins, as upstream
    assert "excerpt_entities" not in both
    segments = [d for doc in world.doc_ids[105] for d in by_doc[doc]]
    assert {d["source_territory_id"] for d in segments} == {"2704302", "2700300"}
    assert all(d["source_processed"] is True and d["source_database_id"] == 105 for d in segments)
    edu = all_docs(client, idx["@edu"])
    (school,) = edu.values()
    assert school["excerpt_subthemes"] == ["Conectividade"]
    assert sorted(school["excerpt_entities"]) == ["CNPJ", "Secretaria Municipal de Educação"]
    assert "<entidadeeducacao>Secretaria Municipal de Educação</entidadeeducacao>" in school["excerpt"]

    # Requests: no gazette text ever came back, every distinct term of both themes analysed in one
    # request, no scrolls, no per-document writes.
    recorder.requests = list(ours)
    assert all("source_text" not in src for src in recorder.hits_sources())
    terms = [t for th in settings.themes for q in th.queries for t in q.terms()]
    assert recorder.count(r"/_analyze$") == 1 and len(set(terms)) < len(terms)
    assert recorder.count(r"/_search/scroll") == 0
    assert recorder.count(r"/_doc/") == 0 and recorder.count(r"/_update/") == 0
    # per theme: one themed round (every query; a page holds all hits here), then the entity rounds:
    # @amb's crimes excerpts get two tags (IBAMA, then the Secretaria) = 2 rounds, @edu's school one
    assert recorder.count(r"/_msearch$") == (1 + 2) + (1 + 1)
    assert recorder.count(r"/_search$") == 2  # the rerank reads, one per theme
    bulk = recorder.count(r"^/_bulk$")
    # A refresh rides on the `_bulk` request that sends every write since the last one, else it is explicit.
    riding = sum(1 for r in ours if r.path == "/_bulk" and r.params.get("refresh") in ("true", b"true"))
    refreshes = recorder.count(r"/_refresh$") + riding
    # one for the gazette index, then per theme and batch: one after extraction, one between entity rounds
    assert refreshes == 1 + (1 + 1) + (1 + 0) and riding >= 2

    # The same gazettes through upstream's algorithm, into other indexes.
    recorder.reset()
    up_themes = [dataclasses.replace(t, index=names("up")) for t in settings.themes]
    gazette_ids = [d for gid in (101, 102, 103, 104, 105, 106) for d in world.doc_ids[gid]]
    from qd_extractor.excerpts.rerank import load_model

    upstream(client, world.gazette_index, up_themes, gazette_ids, load_model(world.env["QD_RERANK_MODEL"]))
    theirs = list(recorder.requests)
    assert_same_as_upstream(client, idx["@amb"], up_themes[0].index)
    assert_same_as_upstream(client, idx["@edu"], up_themes[1].index)
    up_writes = recorder.count(r"/_doc/")
    assert recorder.count(r"/_analyze$") == len(terms)  # one batch here; upstream repeats this per batch
    assert any("source_text" in src for src in recorder.hits_sources())
    assert up_writes > len(amb) + len(edu)  # one refreshing write per excerpt, per step
    assert len(ours) < len(theirs) and bulk + refreshes < up_writes
    assert sum(r.received for r in ours) * 3 < sum(r.received for r in theirs)  # the appendix came back to them
    print(json.dumps({"ours": {"requests": len(ours), "analyze": sum(r.path.endswith("/_analyze") for r in ours),
                               "bulk": bulk, "refresh": refreshes, "received_bytes": sum(r.received for r in ours)},
                      "upstream": {"requests": len(theirs), "analyze": len(terms), "index_refresh_true": up_writes,
                                   "received_bytes": sum(r.received for r in theirs)}}))

    # Rerun after a re-extraction: the same excerpts again (no duplicates), no `_analyze` at all.
    before = {eid: comparable(doc) for eid, doc in amb.items()}
    with world.conn.cursor() as cur:
        cur.execute("UPDATE qd_gazette_state SET finished_at = now() WHERE stage = 'extract'")
    recorder.reset()
    again = run_excerpts(settings, 100, 200, stage_logger(), search=client)
    assert again.seen == 7 and again.succeeded == 6
    assert recorder.count(r"/_analyze$") == 0
    after = all_docs(client, idx["@amb"])
    assert {eid: comparable(doc) for eid, doc in after.items()} == before
    assert all(doc["excerpt_embedding_score"] > 0 for doc in after.values())
    # Nothing left to do: a third run selects nothing, unless terminal failures are asked for again.
    assert run_excerpts(settings, 100, 200, stage_logger(), search=client).seen == 0
    retried = run_excerpts(world.settings(QD_RETRY_TERMINAL="true"), 100, 200, stage_logger(), search=client)
    assert (retried.seen, retried.failed) == (1, 1) and world.state(107) == ("failed", "rejected", True)



def test_shipped_upstream_themes(world: World, client: OpenSearch, names: Any, write_themes: Any,
                                 upstream: Any) -> None:
    shipped = json.loads(themes_mod.shipped_path().read_text(encoding="utf-8"))
    path, idx = themes_file(shipped, names, write_themes)
    world.env["QD_THEMES_CONFIG"] = str(path)
    world.gazette(201, "3550308", [CRIMES])
    world.gazette(202, "3550308", [SCHOOL])
    world.gazette(203, "3550308", [NOTHING])
    settings = world.settings()
    assert [len(t.queries) for t in settings.themes] == [11, 7]
    summary = run_excerpts(settings, 200, 299, stage_logger(), search=client)
    assert (summary.succeeded, summary.failed) == (3, 0)

    up_themes = [dataclasses.replace(t, index=names("up")) for t in settings.themes]
    from qd_extractor.excerpts.rerank import load_model

    upstream(client, world.gazette_index, up_themes, [d for g in (201, 202, 203) for d in world.doc_ids[g]],
             load_model(world.env["QD_RERANK_MODEL"]))
    amb = assert_same_as_upstream(client, idx["ambiental"], up_themes[0].index)
    edu = assert_same_as_upstream(client, idx["educacao"], up_themes[1].index)
    assert {d["source_database_id"] for d in amb.values()} == {201}
    assert {d["source_database_id"] for d in edu.values()} == {202}
    (crimes,) = amb.values()
    assert crimes["excerpt_subthemes"] == ["Crimes Ambientais"]
    assert sorted(crimes["excerpt_entities"]) == ["CNPJ", "IBAMA", "Secretaria de Meio Ambiente"]
    (school,) = edu.values()
    assert sorted(school["excerpt_entities"]) == ["CNPJ", "Secretaria Municipal de Educação"]



def test_rerank_repair_scores_what_is_missing(world: World, client: OpenSearch, names: Any,
                                              write_themes: Any, record: Any) -> None:
    path, idx = themes_file(SMALL_THEMES, names, write_themes)
    world.env["QD_THEMES_CONFIG"] = str(path)
    world.gazette(101, "3550308", [CRIMES])
    world.gazette(102, "3550308", [BOTH])
    world.gazette(105, "2700000", [CRIMES.replace("PREFEITURA", "MACEIÓ"), BOTH + " Arapiraca."])
    settings = world.settings(QD_RERANK_REPAIR_PAGE="2", QD_EXCERPT_ID_BATCH="1")
    run_excerpts(settings, 100, 200, stage_logger(), search=client)
    scored = all_docs(client, idx["@amb"])
    assert len(scored) == 4
    client.update_by_query(index=idx["@amb"], body={
        "query": {"match_all": {}}, "script": {"source": "ctx._source.remove('excerpt_embedding_score')"}},
        refresh=True)
    assert all("excerpt_embedding_score" not in d for d in all_docs(client, idx["@amb"]).values())
    recorder = record(client)

    result = run_rerank_repair(settings, stage_logger(), search=client)

    assert result == {idx["@amb"]: 4, idx["@edu"]: 0}
    # Pages of 2 ids (upstream's query shape), texts fetched 1 id at a time with `excerpt` only.
    first = next(r for r in recorder.requests if "scroll" in r.params)
    assert first.params["scroll"] in ("30m", b"30m")
    # per theme one scroll search; 4 fetches of 1 id; pages of 2: one scroll request, none for an empty page;
    # every scroll context cleared
    assert recorder.count(r"/_search$") == 2 + 4 and recorder.count(r"/_search/scroll$", "POST") == 1
    assert recorder.count(r"/_search/scroll$", "DELETE") == 2
    fetched = [s for s in recorder.hits_sources() if s]
    assert len(fetched) == 4 and all(set(s) == {"excerpt"} for s in fetched)
    repaired = all_docs(client, idx["@amb"])
    # Upstream's repair scores the stored text, entity tags included, one excerpt at a time.
    from sentence_transformers import util

    from qd_extractor.excerpts.rerank import load_model

    model = load_model(world.env["QD_RERANK_MODEL"])
    titles = model.encode([q.title for q in settings.themes[0].queries], convert_to_tensor=True)
    for eid, doc in repaired.items():
        expected = util.semantic_search(model.encode(doc["excerpt"], convert_to_tensor=True), titles, top_k=1)
        assert doc["excerpt_embedding_score"] == pytest.approx(expected[0][0]["score"], abs=1e-4)
        assert comparable(doc) == comparable(scored[eid])
    assert run_rerank_repair(settings, stage_logger(), search=client) == {idx["@amb"]: 0, idx["@edu"]: 0}
