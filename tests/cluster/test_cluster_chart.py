"""The Helm chart against a real API server with RBAC: the rendered objects pass server-side
validation, the installed RBAC grants what the operator needs and nothing else (checked with
`kubectl auth can-i` as the ServiceAccounts), and the real operator runs a run under it.

Cluster-scoped objects (ClusterRole/Binding) are named after a unique release per test and
removed by `helm uninstall`, with a direct delete as a fallback.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from qd_core import db
from qd_operator import handlers, model, spec
from qd_operator.settings import OperatorSettings
from qd_testkit import seed_gazettes as seed

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "qd-extractor"
CRD_NAME = f"{model.PLURAL}.{model.GROUP}"
RUNS = f"{model.PLURAL}.{model.GROUP}"
VALUES = {"database": {"existingSecret": "qd-db", "host": "postgres.invalid", "name": "queridodiario"}}

Kubectl = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def helm(kubeconfig: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the pinned helm (QD_HELM or hack/tools/helm.sh) against KUBECONFIG."""
    path = os.environ.get("QD_HELM")
    if not path:
        proc = subprocess.run(["bash", str(ROOT / "hack" / "tools" / "helm.sh")], capture_output=True, text=True,
                              check=False, timeout=1200)
        if proc.returncode != 0:
            pytest.fail(f"no helm: set QD_HELM or make hack/tools/helm.sh work ({proc.stderr.strip()[-500:]})",
                        pytrace=False)
        path = proc.stdout.strip().splitlines()[-1]

    def run(*args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([path, "--kubeconfig", kubeconfig, *args], input=input, capture_output=True,
                              text=True, check=False, timeout=180)
        if check and proc.returncode != 0:
            pytest.fail(f"`helm {' '.join(args)}` exited {proc.returncode}: {proc.stderr.strip()}", pytrace=False)
        return proc

    return run


def values_file(tmp_path: Path, values: dict[str, Any]) -> str:
    path = tmp_path / f"values-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(values))
    return str(path)


@pytest.fixture()
def release(helm: Callable[..., Any], kubectl: Kubectl, namespace: str, tmp_path: Path, wait_for: Callable[..., Any],
            api_client: Any) -> Iterator[Callable[[dict[str, Any]], str]]:
    """install(values) → release name: `helm install` into the test namespace (the CRD too, if
    absent); uninstalled afterwards, and any cluster-scoped RBAC it left deleted directly."""
    installed: list[str] = []
    ext = client.ApiextensionsV1Api(api_client)

    def crd_established() -> bool:
        crd = ext.read_custom_resource_definition(CRD_NAME)
        return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])

    def install(values: dict[str, Any]) -> str:
        name = f"qdc-{uuid.uuid4().hex[:6]}"
        installed.append(name)
        helm("install", name, str(CHART), "--namespace", namespace, "-f", values_file(tmp_path, values))
        wait_for(crd_established, 60, "the CRD to be established")
        return name

    try:
        yield install
    finally:
        for name in installed:
            helm("uninstall", name, "--namespace", namespace, check=False)
            leftover = f"{name}-qd-extractor-operator"
            kubectl("delete", "clusterrolebinding,clusterrole", leftover, "--ignore-not-found", check=False)


def can_i(kubectl: Kubectl, sa_namespace: str, sa: str, verb: str, resource: str, namespace: str | None = None,
          subresource: str | None = None) -> bool:
    """`kubectl auth can-i` as the ServiceAccount, with the groups its token would carry."""
    args = ["auth", "can-i", verb, resource, f"--as=system:serviceaccount:{sa_namespace}:{sa}",
            "--as-group=system:serviceaccounts", f"--as-group=system:serviceaccounts:{sa_namespace}",
            "--as-group=system:authenticated"]
    args += ["--namespace", namespace] if namespace else ["--all-namespaces"]
    if subresource:
        args += ["--subresource", subresource]
    proc = kubectl(*args, check=False)
    answer = proc.stdout.strip()
    assert answer in ("yes", "no"), f"kubectl auth can-i {verb} {resource}: {proc.stdout}{proc.stderr}"
    return answer == "yes"


#: (verb, resource, subresource) the operator must be able to do where it serves runs.
OPERATOR_CAN = [
    ("get", RUNS, None), ("list", RUNS, None), ("watch", RUNS, None), ("patch", RUNS, None),
    ("delete", RUNS, None), ("patch", RUNS, "status"), ("update", RUNS, "finalizers"),
    ("create", "jobs.batch", None), ("patch", "jobs.batch", None), ("list", "jobs.batch", None),
    ("watch", "jobs.batch", None),
    ("list", "pods", None), ("create", "events", None),
]
#: ... and must not be able to do anywhere.
OPERATOR_CANNOT = [
    ("get", "secrets", None), ("list", "secrets", None), ("get", "configmaps", None),
    ("create", "pods", None), ("delete", "pods", None), ("create", "pods", "exec"),
    ("delete", "jobs.batch", None), ("create", RUNS, None), ("update", RUNS, "status"),
    ("create", "serviceaccounts", "token"), ("create", "rolebindings.rbac.authorization.k8s.io", None),
    ("delete", "events", None),
]
#: The Jobs' ServiceAccount: nothing at all.
JOB_CANNOT = [
    ("list", "pods", None), ("get", "secrets", None), ("get", "configmaps", None), ("create", "jobs.batch", None),
    ("list", RUNS, None), ("patch", RUNS, "status"), ("create", "events", None), ("create", "pods", None),
]


def matrix(kubectl: Kubectl, sa_namespace: str, sa: str, checks: list[tuple[str, str, str | None]],
           namespace: str | None) -> dict[str, bool]:
    return {f"{verb} {resource}{'/' + sub if sub else ''}": can_i(kubectl, sa_namespace, sa, verb, resource,
                                                                   namespace, sub)
            for verb, resource, sub in checks}


@pytest.mark.parametrize("mode", ["cluster-wide", "namespaced"])
def test_rendered_chart_passes_server_side_dry_run(helm: Callable[..., Any], kubectl: Kubectl, namespace: str,
                                                   versions: dict[str, str], tmp_path: Path, mode: str) -> None:
    values = {**VALUES, "networkPolicy": {"enabled": True, "apiServerCIDRs": ["10.96.0.1/32"]},
              "extractor": {"jobTTLSeconds": 3600}}
    if mode == "namespaced":
        values["operator"] = {"watchNamespaces": [namespace]}
    rendered = helm("template", f"qdc-{uuid.uuid4().hex[:6]}", str(CHART), "--namespace", namespace,
                    "--kube-version", versions["K8S_VERSION"], "-f", values_file(tmp_path, values)).stdout
    kinds = {d["kind"] for d in yaml.safe_load_all(rendered) if d}
    assert {"Deployment", "ServiceAccount", "Service", "NetworkPolicy"} <= kinds
    proc = kubectl("apply", "--dry-run=server", "-f", "-", input=rendered)
    assert proc.stdout.count("(server dry run)") == sum(1 for d in yaml.safe_load_all(rendered) if d)
    # The CRD as the chart ships it, too (server-side apply: it may already exist).
    kubectl("apply", "--dry-run=server", "--server-side", "-f", str(CHART / "crds" / "extractionrun.yaml"))


def test_cluster_wide_install(release: Callable[[dict[str, Any]], str], kubectl: Kubectl, namespace: str,
                              api_client: Any) -> None:
    name = release(VALUES)
    operator_sa, job_sa = f"{name}-qd-extractor-operator", f"{name}-qd-extractor-job"
    core = client.CoreV1Api(api_client)
    assert core.read_namespaced_service_account(job_sa, namespace).automount_service_account_token is False
    deployment = client.AppsV1Api(api_client).read_namespaced_deployment(operator_sa, namespace)
    assert deployment.spec.template.spec.service_account_name == operator_sa

    for where in (namespace, "default", None):  # the release's namespace, any other, all at once
        got = matrix(kubectl, namespace, operator_sa, OPERATOR_CAN, where)
        assert got == dict.fromkeys(got, True), f"in {where or 'all namespaces'}"
        got = matrix(kubectl, namespace, operator_sa, OPERATOR_CANNOT, where)
        assert got == dict.fromkeys(got, False), f"in {where or 'all namespaces'}"
        got = matrix(kubectl, namespace, job_sa, JOB_CANNOT, where)
        assert got == dict.fromkeys(got, False), f"job SA in {where or 'all namespaces'}"
    # kopf watches CRDs cluster-wide; it never needs namespaces or nodes.
    cluster = [("list", "customresourcedefinitions.apiextensions.k8s.io", None),
               ("watch", "customresourcedefinitions.apiextensions.k8s.io", None),
               ("delete", "customresourcedefinitions.apiextensions.k8s.io", None), ("list", "namespaces", None),
               ("delete", "namespaces", None), ("list", "nodes", None)]
    assert matrix(kubectl, namespace, operator_sa, cluster, None) == {
        "list customresourcedefinitions.apiextensions.k8s.io": True,
        "watch customresourcedefinitions.apiextensions.k8s.io": True,
        "delete customresourcedefinitions.apiextensions.k8s.io": False,
        "list namespaces": False, "delete namespaces": False, "list nodes": False}
    rbac = client.RbacAuthorizationV1Api(api_client)
    assert rbac.read_cluster_role(operator_sa).metadata.labels["app.kubernetes.io/instance"] == name


def test_uninstall_removes_the_cluster_scoped_rbac(release: Callable[[dict[str, Any]], str],
                                                   helm: Callable[..., Any], namespace: str, api_client: Any) -> None:
    name = release(VALUES)
    rbac = client.RbacAuthorizationV1Api(api_client)
    rbac.read_cluster_role(f"{name}-qd-extractor-operator")
    helm("uninstall", name, "--namespace", namespace, "--wait")
    for read in (rbac.read_cluster_role, rbac.read_cluster_role_binding):
        with pytest.raises(client.exceptions.ApiException) as err:
            read(f"{name}-qd-extractor-operator")
        assert err.value.status == 404
    # Helm never deletes CRDs: runs would go with them.
    client.ApiextensionsV1Api(api_client).read_custom_resource_definition(CRD_NAME)


@contextlib.contextmanager
def extra_namespace(core: Any, base: str) -> Iterator[str]:
    name = f"{base}-runs"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels={"qd-test": "true"})))
    try:
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")


def test_namespaced_install(release: Callable[[dict[str, Any]], str], kubectl: Kubectl, namespace: str,
                            api_client: Any) -> None:
    core = client.CoreV1Api(api_client)
    with extra_namespace(core, namespace) as runs:
        name = release({**VALUES, "operator": {"watchNamespaces": [runs]}})
        operator_sa, job_sa = f"{name}-qd-extractor-operator", f"{name}-qd-extractor-job"
        for ns in (namespace, runs):  # the Jobs' SA where the Jobs run (and in the release namespace)
            assert core.read_namespaced_service_account(job_sa, ns).automount_service_account_token is False
        got = matrix(kubectl, namespace, operator_sa, OPERATOR_CAN, runs)
        assert got == dict.fromkeys(got, True)
        for where in (runs, namespace, "default", None):
            got = matrix(kubectl, namespace, operator_sa, OPERATOR_CANNOT, where)
            assert got == dict.fromkeys(got, False), f"in {where or 'all namespaces'}"
            got = matrix(kubectl, namespace, job_sa, JOB_CANNOT, where)
            assert got == dict.fromkeys(got, False), f"job SA in {where or 'all namespaces'}"
        # Outside the watched namespace (its own included) and cluster-wide: nothing.
        for where in (namespace, "default", None):
            got = matrix(kubectl, namespace, operator_sa, OPERATOR_CAN, where)
            assert got == dict.fromkeys(got, False), f"in {where or 'all namespaces'}"
        assert not can_i(kubectl, namespace, operator_sa, "list", "customresourcedefinitions.apiextensions.k8s.io")
        rbac = client.RbacAuthorizationV1Api(api_client)
        assert not [r for r in rbac.list_cluster_role(label_selector=f"app.kubernetes.io/instance={name}").items]


# --- the real operator, authenticated as the chart's ServiceAccount ------------------------------

def token_kubeconfig(kubectl: Kubectl, path: Path, namespace: str, sa: str) -> str:
    """A kubeconfig that authenticates with a bound token of the ServiceAccount (TokenRequest)."""
    admin = json.loads(kubectl("config", "view", "--raw", "--minify", "-o", "json").stdout)
    token = kubectl("create", "token", sa, "--namespace", namespace, "--duration", "1h").stdout.strip()
    cluster = admin["clusters"][0]
    config = {"apiVersion": "v1", "kind": "Config", "clusters": [cluster],
              "users": [{"name": sa, "user": {"token": token}}],
              "contexts": [{"name": sa, "context": {"cluster": cluster["name"], "user": sa}}],
              "current-context": sa}
    path.write_text(json.dumps(config))
    path.chmod(0o600)
    return str(path)


def test_the_operator_runs_a_run_under_the_charts_namespaced_rbac(
        release: Callable[[dict[str, Any]], str], kubectl: Kubectl, namespace: str, api_client: Any,
        schema: str, conn: Any, wait_for: Callable[..., Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """RBAC only (operator.enabled=false), then kopf in-process with the operator SA's token: a run
    goes from apply to Succeeded and is deleted, its Job pods use the chart's Jobs SA, and the only
    refusals are kopf's optional namespace/CRD scans."""
    import kubernetes
    from kopf.testing import KopfRunner

    core = client.CoreV1Api(api_client)
    with extra_namespace(core, namespace) as runs:
        name = release({"operator": {"enabled": False, "watchNamespaces": [runs]}})
        operator_sa, job_sa = f"{name}-qd-extractor-operator", f"{name}-qd-extractor-job"
        kubeconfig = token_kubeconfig(kubectl, tmp_path / "operator.kubeconfig", namespace, operator_sa)
        # kopf logs in from $KUBECONFIG; handlers.configure and kube.Cluster use the client's default.
        monkeypatch.setenv("KUBECONFIG", kubeconfig)
        monkeypatch.setattr(kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", kubeconfig)
        saved = kubernetes.client.Configuration.get_default_copy()
        database = db.DatabaseSettings.from_env()
        handlers._settings = OperatorSettings(
            database=db.DatabaseSettings(database.host, database.port, database.dbname, database.user,
                                         database.password, options=f"-c search_path={schema}"),
            job_service_account=job_sa, default_image=spec.Image("localhost/qd-extractor", "test"),
            reconcile_seconds=0.5, job_ttl_seconds=None, metrics_port=0, namespaces=(runs,))
        seed(conn, 4)
        custom = client.CustomObjectsApi(api_client)
        try:
            with KopfRunner(["run", "--standalone", "--namespace", runs, "-m", "qd_operator.handlers"],
                            timeout=90) as runner:
                custom.create_namespaced_custom_object(model.GROUP, model.VERSION, runs, model.PLURAL, {
                    "apiVersion": f"{model.GROUP}/{model.VERSION}", "kind": model.KIND,
                    "metadata": {"name": "rbac"},
                    "spec": {"selection": {"mode": "UNPROCESSED"}, "stages": ["extract"],
                             "ranges": {"gazettesPerRange": 2}, "parallelism": 2}})
                finished: set[str] = set()

                def succeeded() -> bool:
                    for pod in core.list_namespaced_pod(runs).items:
                        if pod.metadata.name in finished:
                            continue
                        assert pod.spec.service_account_name == job_sa
                        assert pod.spec.automount_service_account_token is False
                        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                        core.patch_namespaced_pod_status(pod.metadata.name, runs, {"status": {
                            "phase": "Succeeded", "containerStatuses": [{
                                "name": model.CONTAINER, "image": "x", "imageID": "", "ready": False,
                                "restartCount": 0, "state": {"terminated": {
                                    "exitCode": 0, "reason": "Completed", "startedAt": now, "finishedAt": now}}}]}})
                        finished.add(pod.metadata.name)
                    run = custom.get_namespaced_custom_object(model.GROUP, model.VERSION, runs, model.PLURAL, "rbac")
                    conditions = (run.get("status") or {}).get("conditions") or []
                    return any(c["type"] == "Succeeded" and c["status"] == "True" for c in conditions)

                wait_for(succeeded, 150, "the run to succeed under the chart's RBAC")
                # Deleting the run: kopf removes its finalizer with the same RBAC.
                custom.delete_namespaced_custom_object(model.GROUP, model.VERSION, runs, model.PLURAL, "rbac")

                def gone() -> bool:
                    try:
                        custom.get_namespaced_custom_object(model.GROUP, model.VERSION, runs, model.PLURAL, "rbac")
                    except client.exceptions.ApiException as err:
                        return err.status == 404
                    return False

                wait_for(gone, 60, "the run to be deleted (finalizer removed by the operator)")
        finally:
            handlers._settings = None
            kubernetes.client.Configuration.set_default(saved)
        assert runner.exit_code == 0, runner.output[-3000:]
        assert len(finished) == 2
        reasons = {e.reason for e in core.list_namespaced_event(runs).items}
        assert {"Planned", "JobCreated", "RunSucceeded"} <= reasons, reasons
        # The only refusals allowed are kopf's optional scans, which it survives (it falls back to
        # the listed namespaces after its retries, ~1 min; settings.scanning.disabled avoids them).
        optional = ("/api/v1/namespaces -> APIForbiddenError",
                    "/apis/apiextensions.k8s.io/v1/customresourcedefinitions -> APIForbiddenError",
                    "Not enough permissions to list namespaces", "Not enough permissions to watch for")
        refusals = [line for line in runner.output.splitlines()
                    if ("forbidden" in line.lower() or " 403" in line) and not any(o in line for o in optional)]
        assert not refusals, "\n".join(refusals)
