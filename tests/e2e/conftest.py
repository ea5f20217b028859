"""End-to-end fixtures; what they need from the environment is described in e2e_helpers.py."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest
import requests
from e2e_helpers import ROOT, UPSTREAM_SCHEMA, Cluster, env, helm_bin, kubeconfig, pod_model_path
from kubernetes import client

from qd_devtools import territories
from qd_testkit import api_client


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def api() -> Iterator[Any]:
    api = api_client(kubeconfig())
    nodes = client.CoreV1Api(api).list_node().items
    ready = [n for n in nodes if any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])]
    if not ready:
        pytest.fail("no Ready node: the e2e suite needs hack/cluster/node.sh up (or kind)", pytrace=False)
    yield api
    api.close()


@pytest.fixture(scope="session")
def e2e(api: Any, s3: Any, bucket: str) -> Iterator[Cluster]:
    """A namespace with the chart, a fresh database `qd_e2e_<hex>` and a fresh index."""
    suffix = uuid.uuid4().hex[:6]
    namespace, database, index = f"qd-e2e-{suffix}", f"qd_e2e_{suffix}", f"qd-e2e-{suffix}"
    dsn = (f"host={env('POSTGRES_HOST')} port={env('POSTGRES_PORT')} user={env('POSTGRES_USER')} "
           f"password={env('POSTGRES_PASSWORD')}")
    admin = psycopg2.connect(dsn, dbname=env("POSTGRES_DB"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE {database}")
    conn = psycopg2.connect(dsn, dbname=database)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(UPSTREAM_SCHEMA.read_text())
    territories.load_territories(conn)
    conn.close()
    core = client.CoreV1Api(api)
    core.create_namespace({"metadata": {"name": namespace}})
    services = {
        "POSTGRES_HOST": env("QD_POD_POSTGRES_HOST"), "POSTGRES_PORT": env("POSTGRES_PORT"),
        "POSTGRES_DB": database, "STORAGE_ENDPOINT": env("QD_POD_STORAGE_ENDPOINT"),
        "STORAGE_REGION": os.environ.get("STORAGE_REGION", "us-east-1"), "STORAGE_BUCKET": bucket,
        "APACHE_TIKA_SERVER": env("QD_POD_APACHE_TIKA_SERVER"), "OPENSEARCH_HOST": env("QD_POD_OPENSEARCH_HOST"),
        "OPENSEARCH_INDEX": index, "QUERIDO_DIARIO_FILES_ENDPOINT": "data.queridodiario.ok.org.br",
        "QD_RERANK_MODEL": os.environ.get("QD_POD_RERANK_MODEL") or pod_model_path(),
        "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "TIKA_RETRY_BASE_DELAY": "0.5",
    }
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "qd-services"}, "data": services})
    core.create_namespaced_secret(namespace, {"metadata": {"name": "qd-credentials"}, "stringData": {
        "POSTGRES_USER": env("POSTGRES_USER"), "POSTGRES_PASSWORD": env("POSTGRES_PASSWORD"),
        "STORAGE_ACCESS_KEY": env("STORAGE_ACCESS_KEY"), "STORAGE_ACCESS_SECRET": env("STORAGE_ACCESS_SECRET")}})
    operator_image = env("QD_OPERATOR_IMAGE")
    repository, _, tag = operator_image.rpartition(":")
    extract_repo, _, extract_tag = env("QD_EXTRACTOR_IMAGE").rpartition(":")
    helm = [helm_bin(), "--kubeconfig", kubeconfig()]
    release = f"qd-{suffix}"
    values = {"operator.image.repository": repository, "operator.image.tag": tag,
              "operator.image.pullPolicy": "Never", "operator.watchNamespaces": f"{{{namespace}}}",
              "operator.reconcileSeconds": "2", "extractor.image.repository": extract_repo,
              "extractor.image.tag": extract_tag, "database.existingSecret": "qd-credentials",
              "database.existingConfigMap": "qd-services"}
    if os.environ.get("QD_POD_APISERVER_HOST"):  # the local node has no kube-proxy (hack/cluster/expose.sh)
        values["operator.extraEnv[0].name"] = "KUBERNETES_SERVICE_HOST"
        values["operator.extraEnv[0].value"] = os.environ["QD_POD_APISERVER_HOST"]
        values["operator.extraEnv[1].name"] = "KUBERNETES_SERVICE_PORT"
        values["operator.extraEnv[1].value"] = os.environ["QD_POD_APISERVER_PORT"]
    sets = [arg for key, value in values.items() for arg in ("--set-string" if "extraEnv" in key else "--set",
                                                            f"{key}={value}")]
    subprocess.run([*helm, "install", release, str(ROOT / "charts" / "qd-extractor"), "-n", namespace, *sets,
                    "--wait", "--timeout", "5m"], check=True, capture_output=True, text=True)
    cluster = Cluster(api, namespace, database, dsn, index, s3, bucket)
    yield cluster
    subprocess.run([*helm, "uninstall", release, "-n", namespace, "--wait"], check=False, capture_output=True)
    core.delete_namespace(namespace)
    requests.delete(f"{env('OPENSEARCH_HOST')}/{index}*", timeout=30)
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))
        cur.execute(f"DROP DATABASE IF EXISTS {database}")
    admin.close()
