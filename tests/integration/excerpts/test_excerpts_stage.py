"""The excerpts stage end to end on real OpenSearch and PostgreSQL, compared with upstream's algorithm.

Gazette documents are indexed with the real gazette mapping; the state table says their extraction
succeeded; the stage then extracts, reranks (a real sentence model) and tags. The same gazettes go
through `run_upstream` (conftest) into other indexes, and both results must be the same documents.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from opensearchpy import OpenSearch
from opensearchpy.exceptions import ConnectionError as OSConnectionError

from qd_core.states import ErrorClass
from qd_extractor.excerpts import themes as themes_mod
from qd_extractor.excerpts.app import ExcerptSettings, run_excerpts, run_rerank_repair
from qd_extractor.search import SearchUnavailableError, ensure_index, gazette_document, gazette_index_body

pytestmark = [pytest.mark.integration, pytest.mark.rerank]

CRIMES = ("PREFEITURA MUNICIPAL. Diário Oficial do Município. Nos termos da Lei Federal nº 9.605, de 12 de "
          "fevereiro de 1998, que dispõe sobre crimes ambientais, a fiscalização será feita com apoio do IBAMA e da "
          "Secretaria de Meio Ambiente, pela empresa contratada CNPJ 12.345.678/0001-90, em todo o território "
          "municipal.\n\n"
          "Outros atos: nomeação de servidores para a festa junina e o calendário das escolas municipais.")
BOTH = ("Câmara Municipal aprova o plano que integra a política nacional de saneamento ao combate aos crimes "
        "ambientais, conforme a Lei nº 9.605/1998, com relatórios mensais ao conselho e audiências públicas abertas "
        "a toda a população do município e dos distritos rurais vizinhos.")
#: A long appendix nothing matches: upstream ships it back with every hit of the gazette; we never do.
APPENDIX = "\n\nAnexo I: tabela de valores de referência, item, unidade, quantidade e preço." * 2000
NOTHING = "Extrato de contrato de fornecimento de merenda escolar para o primeiro semestre, sem outros assuntos. " * 3
SHORT = "Lei 9.605 crimes ambientais."
SCHOOL = ("Extrato do contrato de prestação de serviços de internet banda larga para a escola municipal Rui Barbosa, "
          "firmado pela Secretaria Municipal de Educação com a empresa Conecta Ltda, CNPJ 98.765.432/0001-10, pelo "
          "prazo de doze meses, com pagamento mensal conforme medição dos serviços.")

SMALL_THEMES: dict[str, Any] = {"themes": [
    {"name": "Ambiental de teste", "index": "@amb", "stopwords": [],
     "entities": {"categories": [], "cases": [
         {"category": "entidadeambiental", "title": "IBAMA",
          "values": ["instituto brasileiro do meio ambiente e dos recursos naturais renováveis", "ibama"]},
         {"category": "entidadeambiental", "title": "Secretaria de Meio Ambiente",
          "values": ["secretaria de meio ambiente"]}]},
     "queries": [
         {"title": "Crimes Ambientais", "term_sets": [
             [["lei federal", "lei"], ["9.605", "9605"], ["12 de fevereiro de 1998", "1998", "98"]],
             [["crimes ambientais", "lei de crimes ambientais"]]]},
         {"title": "Saneamento", "term_sets": [
             [["política nacional de saneamento", "conselho nacional de saneamento"]],
             [["lei federal", "lei"], ["11.445", "11445"]]]}]},
    {"name": "Educação de teste", "index": "@edu", "stopwords": [],
     "entities": {"categories": [], "cases": [
         {"category": "entidadeeducacao", "title": "Secretaria Municipal de Educação",
          "values": ["secretaria de educação", "secretaria municipal de educação"]}]},
     "queries": [{"title": "Conectividade", "term_sets": [
         [["contrato", "licitação"], ["ensino", "escola"], ["internet", "wi-fi", "banda larga"]]]}]},
]}


def all_docs(client: OpenSearch, index: str) -> dict[str, dict[str, Any]]:
    client.indices.refresh(index=index)
    hits = client.search(index=index, body={"query": {"match_all": {}}, "size": 10_000})["hits"]["hits"]
    return {h["_id"]: h["_source"] for h in hits}


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


@dataclasses.dataclass
class World:
    client: OpenSearch
    conn: Any
    gazette_index: str
    env: dict[str, str]
    doc_ids: dict[int, list[str]] = dataclasses.field(default_factory=dict)

    def settings(self, **extra: str) -> ExcerptSettings:
        return ExcerptSettings.from_env({**self.env, **extra})

    def gazette(self, gid: int, territory: str, texts: list[str], *, extract: str = "succeeded",
                db_id: Any = None) -> None:
        """A gazette row, its extract state, and one indexed document per text (segments when several)."""
        checksum = md5(f"file-{gid}")
        day = dt.date(2024, 1, 1) + dt.timedelta(days=gid % 28)
        path = f"{territory}/{day}/{checksum}.pdf"
        with self.conn.cursor() as cur:
            cur.execute("INSERT INTO gazettes (id, date, edition_number, is_extra_edition, power, file_checksum,"
                        " file_path, file_url, scraped_at, created_at, territory_id, processed) VALUES"
                        " (%s, %s, %s, false, 'executive', %s, %s, %s, now(), now(), %s, true)",
                        (gid, day, str(gid), checksum, path, f"https://example.org/{gid}.pdf", territory))
            # Extracted by the same run: a run's excerpts cover the gazettes that run extracted.
            cur.execute("INSERT INTO qd_gazette_state (gazette_id, stage, state, attempts, finished_at, run_id)"
                        " VALUES (%s, 'extract', %s, 1, now(), 'test-run')", (gid, extract))
        segments = len(texts) > 1
        ids = []
        for n, text in enumerate(texts):
            doc_id = md5(text) if segments else checksum
            row = {"id": gid if db_id is None else db_id, "date": day, "edition_number": str(gid),
                   "is_extra_edition": False, "power": "executive", "file_checksum": doc_id, "file_path": path,
                   "file_url": f"https://example.org/{gid}.pdf", "scraped_at": dt.datetime(2024, 2, 1, 12, 30),
                   "created_at": dt.datetime(2024, 2, 1, 13, 0, 5), "processed": segments,
                   "territory_id": ["2704302", "2700300"][n] if segments else territory,
                   "territory_name": "Maceió" if segments and n == 0 else "Arapiraca" if segments else "São Paulo",
                   "state_code": "AL" if segments else "SP"}
            txt = f"{row['territory_id']}/{day}/{doc_id}.txt"
            source = gazette_document(row, url=f"files/{path}", file_raw_txt=f"files/{txt}", text=text)
            self.client.index(index=self.gazette_index, id=doc_id, body=source, refresh=True)
            with self.conn.cursor() as cur:
                cur.execute("INSERT INTO qd_gazette_documents (gazette_id, doc_id, territory_id, txt_key, text_bytes)"
                            " VALUES (%s, %s, %s, %s, %s)", (gid, doc_id, row["territory_id"], txt, len(text)))
            ids.append(doc_id)
        self.doc_ids[gid] = ids

    def state(self, gid: int) -> tuple[str, str | None, bool] | None:
        with self.conn.cursor() as cur:
            cur.execute("SELECT state, error_class, terminal FROM qd_gazette_state WHERE gazette_id = %s"
                        " AND stage = 'excerpts'", (gid,))
            row = cur.fetchone()
        return None if row is None else (row[0], row[1], row[2])


@pytest.fixture()
def world(client: OpenSearch, conn: Any, schema: str, names: Callable[[str], str], model_path: str,
          monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("PGOPTIONS", f"-c search_path={schema}")  # the stage's own connection uses the test schema
    gazette_index = names("gz")
    ensure_index(client, gazette_index, gazette_index_body())
    with conn.cursor() as cur:
        cur.execute("INSERT INTO territories VALUES ('3550308', 'São Paulo', 'SP', 'São Paulo'),"
                    " ('2700000', 'Associação dos Municípios Alagoanos', 'AL', 'Alagoas'),"
                    " ('2704302', 'Maceió', 'AL', 'Alagoas'), ('2700300', 'Arapiraca', 'AL', 'Alagoas')")
    import os

    env = {k: os.environ[k] for k in ("OPENSEARCH_HOST", "OPENSEARCH_USER", "OPENSEARCH_PASSWORD", "POSTGRES_HOST",
                                      "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD")}
    env.update(OPENSEARCH_INDEX=gazette_index, QD_RERANK_MODEL=model_path, QD_RUN_ID="test-run",
               MEMORY_LIMIT_BYTES=str(512 * 1024**2))
    return World(client, conn, gazette_index, env)


def _themes_file(data: dict[str, Any], names: Callable[[str], str], write: Callable[[dict[str, Any]], Path],
                 prefix: str = "") -> tuple[Path, dict[str, str]]:
    """A copy of `data` whose index names are unique to the test; returns (file, {old: new})."""
    data = json.loads(json.dumps(data))
    renamed = {}
    for theme in data["themes"]:
        renamed[theme["index"]] = theme["index"] = names(prefix + theme["index"].strip("@"))
    return write(data), renamed


def _logger() -> logging.Logger:
    log = logging.getLogger("test.excerpts")
    log.setLevel(logging.INFO)
    return log


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    out = dict(doc)
    out["excerpt_entities"] = sorted(out.get("excerpt_entities", []))
    out.pop("excerpt_embedding_score", None)
    return out


def _assert_same_as_upstream(client: OpenSearch, ours: str, theirs: str) -> dict[str, dict[str, Any]]:
    mine, upstream = all_docs(client, ours), all_docs(client, theirs)
    assert mine and set(mine) == set(upstream)
    for eid, doc in mine.items():
        assert _comparable(doc) == _comparable(upstream[eid]), eid
        assert doc["excerpt_embedding_score"] == pytest.approx(upstream[eid]["excerpt_embedding_score"], abs=1e-4)
        assert doc["excerpt_embedding_score"] > 0
    return mine


def test_stage_matches_upstream_with_bounded_requests(world: World, client: OpenSearch, names: Any,
                                                      write_themes: Any, upstream: Any, record: Any) -> None:
    path, idx = _themes_file(SMALL_THEMES, names, write_themes)
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

    summary = run_excerpts(settings, 100, 200, _logger(), search=client)
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
    _assert_same_as_upstream(client, idx["@amb"], up_themes[0].index)
    _assert_same_as_upstream(client, idx["@edu"], up_themes[1].index)
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
    before = {eid: _comparable(doc) for eid, doc in amb.items()}
    with world.conn.cursor() as cur:
        cur.execute("UPDATE qd_gazette_state SET finished_at = now() WHERE stage = 'extract'")
    recorder.reset()
    again = run_excerpts(settings, 100, 200, _logger(), search=client)
    assert again.seen == 7 and again.succeeded == 6
    assert recorder.count(r"/_analyze$") == 0
    after = all_docs(client, idx["@amb"])
    assert {eid: _comparable(doc) for eid, doc in after.items()} == before
    assert all(doc["excerpt_embedding_score"] > 0 for doc in after.values())
    # Nothing left to do: a third run selects nothing, unless terminal failures are asked for again.
    assert run_excerpts(settings, 100, 200, _logger(), search=client).seen == 0
    retried = run_excerpts(world.settings(QD_RETRY_TERMINAL="true"), 100, 200, _logger(), search=client)
    assert (retried.seen, retried.failed) == (1, 1) and world.state(107) == ("failed", "rejected", True)


def test_outage_releases_claimed_gazettes(world: World, client: OpenSearch, names: Any, write_themes: Any) -> None:
    path, _ = _themes_file(SMALL_THEMES, names, write_themes)
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
        run_excerpts(world.settings(), 100, 200, _logger(), search=client)
    # Put back to pending without burning an attempt: the next run takes them again.
    for gid in (101, 102):
        assert world.state(gid) == ("pending", None, False)
    client.transport.perform_request = real  # type: ignore[method-assign]
    assert run_excerpts(world.settings(), 100, 200, _logger(), search=client).succeeded == 2
    with world.conn.cursor() as cur:
        cur.execute("SELECT attempts FROM qd_gazette_state WHERE stage = 'excerpts' ORDER BY gazette_id")
        assert [r[0] for r in cur.fetchall()] == [1, 1]


def test_shipped_upstream_themes(world: World, client: OpenSearch, names: Any, write_themes: Any,
                                 upstream: Any) -> None:
    shipped = json.loads(themes_mod.shipped_path().read_text(encoding="utf-8"))
    path, idx = _themes_file(shipped, names, write_themes)
    world.env["QD_THEMES_CONFIG"] = str(path)
    world.gazette(201, "3550308", [CRIMES])
    world.gazette(202, "3550308", [SCHOOL])
    world.gazette(203, "3550308", [NOTHING])
    settings = world.settings()
    assert [len(t.queries) for t in settings.themes] == [11, 7]
    summary = run_excerpts(settings, 200, 299, _logger(), search=client)
    assert (summary.succeeded, summary.failed) == (3, 0)

    up_themes = [dataclasses.replace(t, index=names("up")) for t in settings.themes]
    from qd_extractor.excerpts.rerank import load_model

    upstream(client, world.gazette_index, up_themes, [d for g in (201, 202, 203) for d in world.doc_ids[g]],
             load_model(world.env["QD_RERANK_MODEL"]))
    amb = _assert_same_as_upstream(client, idx["ambiental"], up_themes[0].index)
    edu = _assert_same_as_upstream(client, idx["educacao"], up_themes[1].index)
    assert {d["source_database_id"] for d in amb.values()} == {201}
    assert {d["source_database_id"] for d in edu.values()} == {202}
    (crimes,) = amb.values()
    assert crimes["excerpt_subthemes"] == ["Crimes Ambientais"]
    assert sorted(crimes["excerpt_entities"]) == ["CNPJ", "IBAMA", "Secretaria de Meio Ambiente"]
    (school,) = edu.values()
    assert sorted(school["excerpt_entities"]) == ["CNPJ", "Secretaria Municipal de Educação"]


def test_rerank_repair_scores_what_is_missing(world: World, client: OpenSearch, names: Any,
                                              write_themes: Any, record: Any) -> None:
    path, idx = _themes_file(SMALL_THEMES, names, write_themes)
    world.env["QD_THEMES_CONFIG"] = str(path)
    world.gazette(101, "3550308", [CRIMES])
    world.gazette(102, "3550308", [BOTH])
    world.gazette(105, "2700000", [CRIMES.replace("PREFEITURA", "MACEIÓ"), BOTH + " Arapiraca."])
    settings = world.settings(QD_RERANK_REPAIR_PAGE="2", QD_EXCERPT_ID_BATCH="1")
    run_excerpts(settings, 100, 200, _logger(), search=client)
    scored = all_docs(client, idx["@amb"])
    assert len(scored) == 4
    client.update_by_query(index=idx["@amb"], body={
        "query": {"match_all": {}}, "script": {"source": "ctx._source.remove('excerpt_embedding_score')"}},
        refresh=True)
    assert all("excerpt_embedding_score" not in d for d in all_docs(client, idx["@amb"]).values())
    recorder = record(client)

    result = run_rerank_repair(settings, _logger(), search=client)

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
        assert _comparable(doc) == _comparable(scored[eid])
    assert run_rerank_repair(settings, _logger(), search=client) == {idx["@amb"]: 0, idx["@edu"]: 0}


def test_a_model_that_cannot_load_stops_the_run(world: World, client: OpenSearch, names: Any, write_themes: Any,
                                                tmp_path: Path) -> None:
    from qd_extractor.excerpts.rerank import EmbeddingScorer, RerankModelError

    path, _ = _themes_file(SMALL_THEMES, names, write_themes)
    world.env["QD_THEMES_CONFIG"] = str(path)
    world.gazette(101, "3550308", [CRIMES])
    broken = tmp_path / "broken-model"
    broken.mkdir()
    with pytest.raises(RerankModelError):
        run_excerpts(world.settings(), 100, 200, _logger(), search=client, scorer=EmbeddingScorer(str(broken)))
    assert world.state(101) == ("pending", None, False)  # not failed: the configuration is at fault


def test_missing_gazette_index_is_a_config_error(world: World, client: OpenSearch, names: Any,
                                                 write_themes: Any) -> None:
    from qd_core.config import ConfigError

    path, _ = _themes_file(SMALL_THEMES, names, write_themes)
    world.env["QD_THEMES_CONFIG"] = str(path)
    world.gazette(101, "3550308", [CRIMES])
    missing = names("missing")
    with pytest.raises(ConfigError, match=f"OPENSEARCH_INDEX={missing}: the gazette index does not exist"):
        run_excerpts(world.settings(OPENSEARCH_INDEX=missing), 100, 200, _logger(), search=client)
    assert world.state(101) is None  # checked before any gazette is claimed


def test_msearch_error_items_fail_only_their_gazettes(world: World, client: OpenSearch, names: Any,
                                                      write_themes: Any) -> None:
    """An error item inside an `_msearch` answer (HTTP 200 overall) is recorded, not fatal to the range.

    The themed search of one gazette document fails: the batch is bisected down to it. An entity
    search of the other theme fails: that theme's step fails for its gazette. Everyone else succeeds.
    """
    path, idx = _themes_file(SMALL_THEMES, names, write_themes)
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
        summary = run_excerpts(world.settings(), 100, 200, _logger(), search=client)
    finally:
        client.transport.perform_request = real  # type: ignore[method-assign]

    assert "themed" in injected and "entity" in injected
    assert (summary.seen, summary.succeeded, summary.failed, summary.terminal) == (3, 1, 2, 0)
    assert world.state(101) == ("succeeded", None, False)
    assert world.state(102) == ("failed", ErrorClass.SEARCH.value, False)  # retried by a later run
    assert world.state(106) == ("failed", ErrorClass.SEARCH.value, False)
    assert {d["source_database_id"] for d in all_docs(client, idx["@amb"]).values()} == {101}
