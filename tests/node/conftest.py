"""Fixtures for the node tier (T3): a real kubelet + containerd node made by hack/cluster/node.sh.

Needs `KUBECONFIG` with a Ready node (`eval "$(hack/cluster/node.sh up)"`) and the extractor image
built into that node (`eval "$(hack/images/build.sh extract)"`, which sets `QD_EXTRACTOR_IMAGE`).
Anything missing fails the test with the command to run: this tier is never skipped. Every test
in this directory is marked `node`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from qd_testkit import api_client, require_env, require_kubeconfig, wait_for

#: Waiting reasons after which a pod will not start by itself.
STUCK_REASONS = {"ErrImageNeverPull", "ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                 "CreateContainerError", "CreateContainerConfigError", "RunContainerError"}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "node: needs a real Kubernetes node (kubelet + containerd, "
                                       "hack/cluster/node.sh)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.node)


def poll(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """qd_testkit.wait_for at this tier's pace (pods and nodes change slowly: every 0.5 s)."""
    return wait_for(predicate, timeout, what, interval=0.5)


@pytest.fixture(scope="session")
def kubeconfig() -> str:
    return require_kubeconfig('eval "$(hack/cluster/node.sh up)"')


@pytest.fixture(scope="session")
def core_v1(kubeconfig: str) -> Iterator[Any]:
    from kubernetes import client

    api = api_client(kubeconfig)
    yield client.CoreV1Api(api)
    api.close()


@pytest.fixture(scope="session")
def ready_node(core_v1: Any) -> Any:
    """The first node whose Ready condition is True (waits up to 60 s)."""

    def find() -> Any:
        for node in core_v1.list_node().items:
            for cond in node.status.conditions or []:
                if cond.type == "Ready" and cond.status == "True":
                    return node
        return None

    if not core_v1.list_node().items:
        pytest.fail("the cluster has no node: run `hack/cluster/node.sh up`", pytrace=False)
    return poll(find, 60, "a Ready node (see `hack/cluster/node.sh status`)")


@pytest.fixture(scope="session")
def node_ip(ready_node: Any) -> str:
    for addr in ready_node.status.addresses or []:
        if addr.type == "InternalIP":
            return str(addr.address)
    pytest.fail(f"node {ready_node.metadata.name} has no InternalIP", pytrace=False)


@pytest.fixture(scope="session")
def extractor_image() -> str:
    image = require_env("QD_EXTRACTOR_IMAGE", 'build it with `eval "$(hack/images/build.sh extract)"`')
    if ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
        pytest.fail(f"QD_EXTRACTOR_IMAGE={image} needs an explicit tag (not :latest)", pytrace=False)
    return image


@pytest.fixture()
def namespace(core_v1: Any, ready_node: Any) -> Iterator[str]:
    """A fresh namespace `qd-node-<6 hex>` with its default ServiceAccount; deleted afterwards."""
    from kubernetes import client

    name = f"qd-node-{uuid.uuid4().hex[:6]}"
    core_v1.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(
        name=name, labels={"qd-test": "true"})))
    try:
        poll(lambda: core_v1.read_namespaced_service_account("default", name), 30,
             f"ServiceAccount default in namespace {name}")
        yield name
    finally:
        core_v1.delete_namespace(name, propagation_policy="Background", grace_period_seconds=0)


@pytest.fixture()
def run_pod(core_v1: Any, namespace: str, extractor_image: str) -> Callable[..., tuple[Any, str]]:
    """run_pod(name, command=None, args=None, memory_limit=None, image=None) -> (pod, logs):
    run one container (imagePullPolicy Never) to completion and return the final pod and its logs.
    Fails at once when the pod cannot start (e.g. the image is not in the node's containerd)."""
    from kubernetes import client

    def run(name: str, command: list[str] | None = None, args: list[str] | None = None,
            memory_limit: str | None = None, image: str | None = None,
            timeout: float = 180) -> tuple[Any, str]:
        resources = None
        if memory_limit:
            resources = client.V1ResourceRequirements(
                limits={"memory": memory_limit, "cpu": "500m"},
                requests={"memory": memory_limit, "cpu": "500m"})
        pod = client.V1Pod(
            metadata=client.V1ObjectMeta(name=name, labels={"qd-test": "node"}),
            spec=client.V1PodSpec(
                restart_policy="Never",
                automount_service_account_token=False,
                termination_grace_period_seconds=1,
                # Tolerate any taint: node.sh may register the node with QD_NODE_TAINT.
                tolerations=[client.V1Toleration(operator="Exists")],
                containers=[client.V1Container(
                    name="main", image=image or extractor_image, image_pull_policy="Never",
                    command=command, args=args, resources=resources)]))
        core_v1.create_namespaced_pod(namespace, pod)

        def finished() -> Any:
            current = core_v1.read_namespaced_pod(name, namespace)
            for status in current.status.container_statuses or []:
                waiting = status.state.waiting
                if waiting and waiting.reason in STUCK_REASONS:
                    pytest.fail(f"pod {namespace}/{name} cannot start: {waiting.reason}: {waiting.message} "
                                f"(is the image imported? `hack/images/build.sh extract`)", pytrace=False)
            return current if current.status.phase in ("Succeeded", "Failed") else None

        final = poll(finished, timeout, f"pod {namespace}/{name} to finish")
        logs = core_v1.read_namespaced_pod_log(name, namespace)
        return final, logs

    return run
