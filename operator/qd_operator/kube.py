"""The few Kubernetes calls the reconciler makes, behind one small class (tests use the real API)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from qd_operator import model

_MERGE = "application/merge-patch+json"


class Cluster:
    """Jobs, pods, runs: create idempotently, patch by merge, never read what an index already has."""

    def __init__(self, api: kubernetes.client.ApiClient | None = None) -> None:
        self.api = api or kubernetes.client.ApiClient()
        self.batch = kubernetes.client.BatchV1Api(self.api)
        self.core = kubernetes.client.CoreV1Api(self.api)
        self.custom = kubernetes.client.CustomObjectsApi(self.api)

    def create_job(self, namespace: str, job: Mapping[str, Any]) -> bool:
        """Create a Job; False when it already exists (a retried or restarted reconcile)."""
        try:
            body: Any = dict(job)
            self.batch.create_namespaced_job(namespace, body)
        except ApiException as err:
            if err.status == 409:
                return False
            raise
        return True

    def set_job_suspend(self, namespace: str, name: str, suspend: bool) -> None:
        self.batch.patch_namespaced_job(name, namespace, {"spec": {"suspend": suspend}}, _content_type=_MERGE)

    def job_pods(self, namespace: str, job_name: str) -> list[dict[str, Any]]:
        """The Job's pods (failed ones carry the termination reasons the reactions need)."""
        pods = self.core.list_namespaced_pod(namespace, label_selector=f"batch.kubernetes.io/job-name={job_name}")
        return [self.api.sanitize_for_serialization(p) for p in pods.items]  # type: ignore[no-untyped-call]

    def patch_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        self.custom.patch_namespaced_custom_object_status(
            model.GROUP, model.VERSION, namespace, model.PLURAL, name, {"status": dict(status)},
            _content_type=_MERGE)

    def run_exists(self, namespace: str, name: str, uid: str) -> bool | None:
        """Whether that ExtractionRun (this very uid) still exists; None when the API will not tell."""
        try:
            body: Any = self.custom.get_namespaced_custom_object(model.GROUP, model.VERSION, namespace,
                                                                 model.PLURAL, name)
        except ApiException as err:
            if err.status == 404:
                return False
            if err.status == 403:  # outside the namespaces this operator may read
                return None
            raise
        return bool(body.get("metadata", {}).get("uid") == uid)

    def delete_run(self, namespace: str, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(model.GROUP, model.VERSION, namespace, model.PLURAL, name,
                                                        propagation_policy="Background")
        except ApiException as err:
            if err.status != 404:
                raise
