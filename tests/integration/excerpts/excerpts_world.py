"""Shared data for the excerpts-stage tests: gazette texts, the `World` (gazette rows, extract
states and indexed documents) and helpers to compare the stage's output with upstream's.
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

from qd_extractor.excerpts.app import ExcerptSettings
from qd_extractor.search import gazette_document

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


def themes_file(data: dict[str, Any], names: Callable[[str], str], write: Callable[[dict[str, Any]], Path],
                 prefix: str = "") -> tuple[Path, dict[str, str]]:
    """A copy of `data` whose index names are unique to the test; returns (file, {old: new})."""
    data = json.loads(json.dumps(data))
    renamed = {}
    for theme in data["themes"]:
        renamed[theme["index"]] = theme["index"] = names(prefix + theme["index"].strip("@"))
    return write(data), renamed


def stage_logger() -> logging.Logger:
    log = logging.getLogger("test.excerpts")
    log.setLevel(logging.INFO)
    return log


def comparable(doc: dict[str, Any]) -> dict[str, Any]:
    out = dict(doc)
    out["excerpt_entities"] = sorted(out.get("excerpt_entities", []))
    out.pop("excerpt_embedding_score", None)
    return out


def assert_same_as_upstream(client: OpenSearch, ours: str, theirs: str) -> dict[str, dict[str, Any]]:
    mine, upstream = all_docs(client, ours), all_docs(client, theirs)
    assert mine and set(mine) == set(upstream)
    for eid, doc in mine.items():
        assert comparable(doc) == comparable(upstream[eid]), eid
        assert doc["excerpt_embedding_score"] == pytest.approx(upstream[eid]["excerpt_embedding_score"], abs=1e-4)
        assert doc["excerpt_embedding_score"] > 0
    return mine
