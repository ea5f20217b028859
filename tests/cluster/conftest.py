"""Fixtures for the cluster tiers (T2 control plane, later T3 node).

The cluster comes from `KUBECONFIG` (for T2: `eval "$(hack/cluster/controlplane.sh up)"`). A
missing variable fails with its name: the cluster tiers are never skipped silently. Every test
in this directory is marked `cluster`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from qd_testkit import api_client as connect
from qd_testkit import require_kubeconfig, wait_for

ROOT = Path(__file__).resolve().parents[2]
# Context of the non-admin test user in the control-plane tier's admin.kubeconfig.
USER_CONTEXT = "qd-user"
USER_NAME = "qd-user"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.cluster)


#: The command that brings this tier's cluster up (named when KUBECONFIG is missing).
UP = 'eval "$(hack/cluster/controlplane.sh up)"'


def pinned_versions() -> dict[str, str]:
    """The KEY=VALUE pins of hack/versions.env."""
    pins: dict[str, str] = {}
    for raw in (ROOT / "hack" / "versions.env").read_text().splitlines():
        line = raw.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            pins[key.strip()] = value.strip()
    return pins


@pytest.fixture(scope="session")
def versions() -> dict[str, str]:
    """The pins of hack/versions.env (K8S_VERSION, ETCD_VERSION, ...)."""
    return pinned_versions()


@pytest.fixture(name="wait_for", scope="session")
def wait_for_fixture() -> Callable[..., Any]:
    """qd_testkit's `wait_for(predicate, timeout, what)`, as a fixture for the test modules."""
    return wait_for


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    return require_kubeconfig(UP)


@pytest.fixture(scope="session")
def api_client(kubeconfig: str) -> Iterator[Any]:
    """An admin ApiClient for the cluster in KUBECONFIG (its current context)."""
    api = connect(kubeconfig)
    yield api
    api.close()


@pytest.fixture(scope="session")
def user_api_client(kubeconfig: str) -> Iterator[Any]:
    """An ApiClient for the non-admin test user (context `qd-user` in KUBECONFIG)."""
    from kubernetes import config

    contexts, _ = config.list_kube_config_contexts(config_file=kubeconfig)
    if not any(c["name"] == USER_CONTEXT for c in contexts):
        pytest.fail(f"KUBECONFIG={kubeconfig} has no context {USER_CONTEXT!r} for the non-admin "
                    f"test user (hack/cluster/controlplane.sh writes it)", pytrace=False)
    api = config.new_client_from_config(config_file=kubeconfig, context=USER_CONTEXT)
    yield api
    api.close()


@pytest.fixture(scope="session")
def core_v1(api_client: Any) -> Any:
    from kubernetes import client

    return client.CoreV1Api(api_client)


@pytest.fixture(scope="session")
def batch_v1(api_client: Any) -> Any:
    from kubernetes import client

    return client.BatchV1Api(api_client)


@pytest.fixture()
def namespace(core_v1: Any) -> Iterator[str]:
    """A fresh namespace `qd-<6 hex>`, ready for pods (its default ServiceAccount exists);
    deleted afterwards without waiting for the namespace controller."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    name = f"qd-{uuid.uuid4().hex[:6]}"
    core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=name, labels={"qd-test": "true"})))

    def default_sa() -> bool:
        try:
            core_v1.read_namespaced_service_account("default", name)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    try:
        wait_for(default_sa, 30, f"ServiceAccount default in namespace {name}")
        yield name
    finally:
        try:
            core_v1.delete_namespace(name, propagation_policy="Background")
        except ApiException as exc:
            if exc.status != 404:
                raise


@pytest.fixture(scope="session")
def kubectl_bin() -> str:
    """QD_KUBECTL (printed by hack/cluster/controlplane.sh env), else kubectl on PATH."""
    path = os.environ.get("QD_KUBECTL") or shutil.which("kubectl")
    if not path or not os.access(path, os.X_OK):
        pytest.fail("no kubectl: set QD_KUBECTL (hack/tools/kubectl.sh builds one) or put "
                    "kubectl on PATH", pytrace=False)
    return path


@pytest.fixture(scope="session")
def kubectl(kubectl_bin: str, kubeconfig: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run kubectl against KUBECONFIG: kubectl("get", "pods", "-n", ns, check=False,
    input=yaml_text). Fails the test with kubectl's stderr when check is true and it fails."""

    def run(*args: str, check: bool = True, input: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        cmd = [kubectl_bin, "--kubeconfig", kubeconfig, *args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True,
                              timeout=timeout, check=False)
        if check and proc.returncode != 0:
            pytest.fail(f"`kubectl {' '.join(args)}` exited {proc.returncode}: "
                        f"{proc.stderr.strip()}", pytrace=False)
        return proc

    return run
