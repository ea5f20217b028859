"""Smoke tests proving the control-plane tier is real: the pinned apiserver version, RBAC
enforcement, and the real Job controller reacting to pod outcomes that the tests write into pod
status (there is no kubelet in this tier; later operator tests drive pods the same way)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

pytestmark = pytest.mark.cluster

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
USER = "qd-user"  # the non-admin static-token user (context qd-user in KUBECONFIG)
SMP = "application/strategic-merge-patch+json"


def job_body(name: str, **spec: Any) -> client.V1Job:
    container = client.V1Container(
        name="extract", image="localhost/qd-extractor:test", image_pull_policy="Never",
        command=["qd-extract"],
        resources=client.V1ResourceRequirements(limits={"memory": "64Mi"},
                                                requests={"memory": "64Mi", "cpu": "50m"}))
    template = client.V1PodTemplateSpec(
        metadata=client.V1ObjectMeta(labels={"app": "qd-test"}),
        spec=client.V1PodSpec(restart_policy="Never", containers=[container]))
    return client.V1Job(metadata=client.V1ObjectMeta(name=name),
                        spec=client.V1JobSpec(template=template, **spec))


def job_pods(core_v1: Any, namespace: str, job: str) -> list[Any]:
    return list(core_v1.list_namespaced_pod(namespace, label_selector=f"{JOB_NAME_LABEL}={job}").items)


def finish_pod(core_v1: Any, pod: Any, exit_code: int, reason: str) -> None:
    """Write a terminal outcome into the pod's status, as a kubelet would after the container
    exited: phase Failed/Succeeded and a terminated container state."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    container = pod.spec.containers[0]
    body = {"status": {
        "phase": "Succeeded" if exit_code == 0 else "Failed",
        "containerStatuses": [{
            "name": container.name, "image": container.image, "imageID": "", "ready": False,
            "restartCount": 0, "started": False,
            "state": {"terminated": {"exitCode": exit_code, "reason": reason,
                                     "startedAt": now, "finishedAt": now}},
        }],
    }}
    core_v1.patch_namespaced_pod_status(pod.metadata.name, pod.metadata.namespace, body,
                                        _content_type=SMP)


def test_server_version_is_pinned(api_client: Any, versions: dict[str, str], kubectl: Any) -> None:
    want = f"v{versions['K8S_VERSION']}"
    assert client.VersionApi(api_client).get_code().git_version == want
    out = json.loads(kubectl("version", "-o", "json").stdout)
    assert out["serverVersion"]["gitVersion"] == want


def test_rbac_is_enforced(core_v1: Any, user_api_client: Any, namespace: str, wait_for: Any) -> None:
    user_core = client.CoreV1Api(user_api_client)
    core_v1.list_namespaced_secret(namespace)  # admin may
    with pytest.raises(ApiException) as denied:
        user_core.list_namespaced_secret(namespace)
    assert denied.value.status == 403
    with pytest.raises(ApiException) as denied_pods:
        user_core.list_namespaced_pod(namespace)
    assert denied_pods.value.status == 403

    # Bind the built-in "view" role in the namespace: pods become readable, secrets stay hidden.
    client.RbacAuthorizationV1Api(core_v1.api_client).create_namespaced_role_binding(
        namespace, client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="qd-user-view"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole",
                                      name="view"),
            subjects=[client.RbacV1Subject(api_group="rbac.authorization.k8s.io", kind="User",
                                           name=USER)]))
    wait_for(lambda: user_core.list_namespaced_pod(namespace) is not None, 10,
             "the RoleBinding to let qd-user list pods")
    with pytest.raises(ApiException) as still_denied:
        user_core.list_namespaced_secret(namespace)
    assert still_denied.value.status == 403


def test_kubectl_auth_can_i(kubectl: Any, namespace: str) -> None:
    def can_i(*args: str) -> str:
        proc = kubectl("auth", "can-i", *args, "-n", namespace, check=False)
        assert proc.returncode in (0, 1), proc.stderr
        return proc.stdout.strip()

    assert can_i("list", "secrets") == "yes"
    assert can_i("list", "secrets", f"--as={USER}") == "no"
    assert can_i("create", "jobs.batch", f"--as=system:serviceaccount:{namespace}:default") == "no"
    kubectl("create", "rolebinding", "qd-user-edit", "--clusterrole=edit", f"--user={USER}",
            "-n", namespace)
    assert can_i("create", "jobs.batch", f"--as={USER}") == "yes"
    assert can_i("list", "nodes", f"--as={USER}") == "no"


def test_job_controller_counts_an_oomkilled_pod(core_v1: Any, batch_v1: Any, namespace: str,
                                                wait_for: Any) -> None:
    batch_v1.create_namespaced_job(namespace, job_body("oom", backoff_limit=0))
    pods = wait_for(lambda: job_pods(core_v1, namespace, "oom"), 30,
                    "the Job controller to create a pod for job oom")
    assert len(pods) == 1
    pod = pods[0]
    assert pod.status.phase == "Pending"
    assert not pod.spec.node_name  # no scheduler, no node: it stays Pending
    assert pod.spec.containers[0].resources.limits["memory"] == "64Mi"

    finish_pod(core_v1, pod, 137, "OOMKilled")

    def failed() -> Any:
        job = batch_v1.read_namespaced_job_status("oom", namespace)
        conds = {c.type: c for c in job.status.conditions or []}
        return job if job.status.failed == 1 and "Failed" in conds else None

    job = wait_for(failed, 30, "job oom to count the OOMKilled pod and fail")
    cond = next(c for c in job.status.conditions if c.type == "Failed")
    assert cond.status == "True" and cond.reason == "BackoffLimitExceeded"
    # The outcome stays readable on the pod, which is what the operator inspects.
    got = core_v1.read_namespaced_pod(pod.metadata.name, namespace).status
    assert got.phase == "Failed"
    terminated = got.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (137, "OOMKilled")


def test_indexed_job_backoff_limit_per_index(core_v1: Any, batch_v1: Any, namespace: str,
                                             wait_for: Any) -> None:
    batch_v1.create_namespaced_job(namespace, job_body(
        "chunks", completion_mode="Indexed", completions=2, parallelism=2,
        backoff_limit_per_index=0))
    pods = wait_for(lambda: (p if len(p := job_pods(core_v1, namespace, "chunks")) == 2 else None),
                    30, "the Job controller to create both index pods of job chunks")
    by_index = {p.metadata.labels[INDEX_LABEL]: p for p in pods}
    assert sorted(by_index) == ["0", "1"]

    finish_pod(core_v1, by_index["0"], 137, "OOMKilled")
    job = wait_for(lambda: (j if (j := batch_v1.read_namespaced_job_status("chunks", namespace))
                            .status.failed_indexes == "0" else None),
                   30, "job chunks to list index 0 in status.failedIndexes")
    assert job.status.failed == 1
    assert not any(c.type == "Failed" for c in job.status.conditions or [])  # index 1 still runs

    finish_pod(core_v1, by_index["1"], 0, "Completed")

    def finished() -> Any:
        j = batch_v1.read_namespaced_job_status("chunks", namespace)
        failed = [c for c in j.status.conditions or [] if c.type == "Failed" and c.status == "True"]
        return j if failed and j.status.completed_indexes == "1" else None

    job = wait_for(finished, 30, "job chunks to complete index 1 and fail on index 0")
    assert job.status.failed_indexes == "0"
    assert job.status.succeeded == 1
    cond = next(c for c in job.status.conditions if c.type == "Failed")
    assert cond.reason == "FailedIndexes"
    # No replacement pod was made for the failed index (backoffLimitPerIndex=0).
    assert len(job_pods(core_v1, namespace, "chunks")) == 2
