"""Run the real extractor CLI against the real services, one isolated schema and index per test."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import requests

from qd_devtools import fixtures as fx
from qd_devtools import loader, territories


@dataclasses.dataclass
class World:
    conn: Any
    s3: Any
    bucket: str
    schema: str
    index: str
    opensearch: str

    def env(self, **extra: str) -> dict[str, str]:
        env = {**os.environ, "PGOPTIONS": f"-c search_path={self.schema}", "OPENSEARCH_INDEX": self.index,
               "EXECUTION_MODE": "UNPROCESSED", "USE_RELATIVE_FILE_PATHS": "false",
               "QUERIDO_DIARIO_FILES_ENDPOINT": "data.queridodiario.ok.org.br", "QD_RUN_ID": "test",
               "TIKA_RETRY_BASE_DELAY": "0.2"}
        env.update(extra)
        return env

    def run(self, *args: str, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "qd_extractor", *args], capture_output=True, text=True,
                              timeout=timeout, env=self.env(**extra), check=False)

    def load(self, items: Sequence[fx.Fixture]) -> list[loader.LoadedGazette]:
        return loader.load_gazettes(self.conn, self.s3, self.bucket, items)

    def states(self) -> dict[int, tuple[str, str | None, bool]]:
        with self.conn.cursor() as cur:
            cur.execute("SELECT gazette_id, state, error_class, terminal FROM qd_gazette_state WHERE stage='extract'")
            return {r[0]: (r[1], r[2], r[3]) for r in cur.fetchall()}

    def processed(self) -> dict[int, bool]:
        with self.conn.cursor() as cur:
            cur.execute("SELECT id, processed FROM gazettes")
            return {r[0]: r[1] for r in cur.fetchall()}

    def doc(self, doc_id: str) -> dict[str, Any] | None:
        resp = requests.get(f"{self.opensearch}/{self.index}/_doc/{doc_id}", timeout=30)
        if resp.status_code == 404:
            return None
        assert resp.status_code == 200, f"GET {doc_id}: HTTP {resp.status_code} {resp.text[:500]}"
        return dict(resp.json()["_source"])

    def count(self) -> int:
        requests.post(f"{self.opensearch}/{self.index}/_refresh", timeout=30)
        return int(requests.get(f"{self.opensearch}/{self.index}/_count", timeout=30).json()["count"])

    def text(self, key: str) -> str:
        return str(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read().decode("utf-8"))


@pytest.fixture()
def world(conn: Any, schema: str, s3: Any, bucket: str, opensearch_url: str) -> Iterator[World]:
    territories.load_territories(conn)
    index = f"qd-test-{uuid.uuid4().hex[:8]}"
    yield World(conn, s3, bucket, schema, index, opensearch_url)
    requests.delete(f"{opensearch_url}/{index}", timeout=30)
