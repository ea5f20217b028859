"""Fixtures for the excerpts stage against real OpenSearch and PostgreSQL.

`upstream` replays upstream's own algorithm (okfn-brasil/querido-diario-data-processing, §7–§8 of
upstream-pipeline.md) on the same data into separate indexes, and `record` counts every request at
the connection; both live in `qd_devtools.upstream_excerpts`, shared with bench/excerpts_requests.py.
The tests compare the stage's output and requests with upstream's.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from excerpts_world import World
from opensearchpy import OpenSearch

from qd_devtools.upstream_excerpts import WireRecorder, run_upstream
from qd_extractor.search import SearchSettings, ensure_index, gazette_index_body, make_client


@pytest.fixture()
def client(opensearch_url: str) -> OpenSearch:
    return make_client(SearchSettings(host=opensearch_url, index="unused", user=os.environ.get("OPENSEARCH_USER"),
                                      password=os.environ.get("OPENSEARCH_PASSWORD")))


@pytest.fixture()
def names(client: OpenSearch) -> Iterator[Callable[[str], str]]:
    """`names("kind")` → a unique index name, deleted after the test."""
    made: list[str] = []

    def make(kind: str) -> str:
        made.append(f"t-{kind}-{uuid.uuid4().hex[:10]}")
        return made[-1]

    yield make
    for name in made:
        client.indices.delete(index=name, ignore_unavailable=True)


@pytest.fixture()
def upstream() -> Callable[..., None]:
    return run_upstream


@pytest.fixture()
def record() -> Callable[[OpenSearch], WireRecorder]:
    """`record(client)` starts recording that client's requests."""
    return WireRecorder


@pytest.fixture()
def write_themes(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    def write(data: dict[str, Any]) -> Path:
        path = tmp_path / f"themes-{uuid.uuid4().hex[:6]}.json"
        path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
        return path

    return write


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
    env = {k: os.environ[k] for k in ("OPENSEARCH_HOST", "OPENSEARCH_USER", "OPENSEARCH_PASSWORD", "POSTGRES_HOST",
                                      "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD")}
    env.update(OPENSEARCH_INDEX=gazette_index, QD_RERANK_MODEL=model_path, QD_RUN_ID="test-run",
               MEMORY_LIMIT_BYTES=str(512 * 1024**2))
    return World(client, conn, gazette_index, env)
