"""The chart's RBAC, rendered and parsed: exact rules in both modes, nothing for the Jobs."""

from __future__ import annotations

from typing import Any

import pytest

NAMESPACE = "qd-system"
OPERATOR_SA = "qd-qd-extractor-operator"
JOB_SA = "qd-qd-extractor-job"
GROUP = "queridodiario.ok.org.br"

#: What the operator needs in a namespace with runs (kube.py, handlers.py, kopf), and no more.
NAMESPACED_RULES = {
    (GROUP, "extractionruns"): {"get", "list", "watch", "patch", "delete"},
    (GROUP, "extractionruns/status"): {"patch"},
    (GROUP, "extractionruns/finalizers"): {"update"},
    ("batch", "jobs"): {"list", "watch", "create", "patch"},
    ("", "pods"): {"list"},
    ("", "events"): {"create"},
}
#: Cluster-wide, kopf also watches CRDs (it does not list namespaces when cluster-wide).
CLUSTER_RULES = {**NAMESPACED_RULES, ("apiextensions.k8s.io", "customresourcedefinitions"): {"list", "watch"}}

CLUSTER_SCOPED = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "Namespace"}
RBAC_KINDS = {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"}


def flatten(rules: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """(group, resource) → verbs; fails on wildcards, resourceNames-less secrets and duplicates."""
    out: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        assert set(rule) <= {"apiGroups", "resources", "verbs"}, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                assert "*" not in (group, resource, *rule["verbs"]), rule
                assert (group, resource) not in out, f"duplicate rule for {(group, resource)}"
                out[(group, resource)] = set(rule["verbs"])
    return out


def of_kind(docs: list[dict[str, Any]], *kinds: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] in kinds]


def test_cluster_wide_by_default(render):
    docs = render()
    assert not of_kind(docs, "Role", "RoleBinding")
    (role,) = of_kind(docs, "ClusterRole")
    (binding,) = of_kind(docs, "ClusterRoleBinding")
    assert flatten(role["rules"]) == CLUSTER_RULES
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": role["metadata"]["name"]}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": NAMESPACE}]
    env = {e["name"]: e.get("value") for e in of_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]
           ["containers"][0]["env"]}
    assert env["QD_WATCH_NAMESPACES"] == ""


def test_namespaced_mode_has_a_role_per_namespace_and_nothing_cluster_scoped(render):
    docs = render({"operator": {"watchNamespaces": ["gazettes", "staging"]}})
    assert not [d for d in docs if d["kind"] in CLUSTER_SCOPED]
    roles = {r["metadata"]["namespace"]: r for r in of_kind(docs, "Role")}
    bindings = {b["metadata"]["namespace"]: b for b in of_kind(docs, "RoleBinding")}
    assert set(roles) == set(bindings) == {"gazettes", "staging"}
    for ns, role in roles.items():
        assert flatten(role["rules"]) == NAMESPACED_RULES
        assert bindings[ns]["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                           "name": role["metadata"]["name"]}
        assert bindings[ns]["subjects"] == [{"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": NAMESPACE}]
    env = {e["name"]: e.get("value") for e in of_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]
           ["containers"][0]["env"]}
    assert env["QD_WATCH_NAMESPACES"] == "gazettes,staging"


def test_the_operator_gets_no_secrets_configmaps_or_pod_creation(render):
    for values in ({}, {"operator": {"watchNamespaces": ["gazettes"]}}):
        for role in of_kind(render(values), "Role", "ClusterRole"):
            rules = flatten(role["rules"])
            for resource in ("secrets", "configmaps", "serviceaccounts", "namespaces", "nodes"):
                assert ("", resource) not in rules
            assert "create" not in rules[("", "pods")]
            assert not any(r.startswith(("roles", "rolebindings", "clusterroles")) for _, r in rules)


@pytest.mark.parametrize("values", [{}, {"operator": {"watchNamespaces": ["gazettes"]}}],
                         ids=["cluster-wide", "namespaced"])
def test_the_jobs_service_account_has_no_token_and_no_binding(render, values):
    docs = render(values)
    job_sas = [d for d in of_kind(docs, "ServiceAccount") if d["metadata"]["name"] == JOB_SA]
    assert job_sas
    for sa in job_sas:
        assert sa["automountServiceAccountToken"] is False
        assert "secrets" not in sa
    for binding in of_kind(docs, "RoleBinding", "ClusterRoleBinding"):
        assert all(s["name"] != JOB_SA for s in binding["subjects"])
    env = {e["name"]: e.get("value") for e in of_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]
           ["containers"][0]["env"]}
    assert env["QD_JOB_SERVICE_ACCOUNT"] == JOB_SA


def test_the_jobs_service_account_exists_wherever_jobs_run(render):
    docs = render({"operator": {"watchNamespaces": ["gazettes", NAMESPACE]},
                   "extractor": {"serviceAccount": {"extraNamespaces": ["more", "gazettes"],
                                                    "imagePullSecrets": [{"name": "regcred"}]}}})
    sas = [d for d in of_kind(docs, "ServiceAccount") if d["metadata"]["name"] == JOB_SA]
    assert sorted(sa["metadata"]["namespace"] for sa in sas) == sorted([NAMESPACE, "gazettes", "more"])
    assert all(sa["imagePullSecrets"] == [{"name": "regcred"}] for sa in sas)


def test_the_operator_service_account_mounts_its_token(render):
    docs = render()
    (sa,) = [d for d in of_kind(docs, "ServiceAccount") if d["metadata"]["name"] == OPERATOR_SA]
    assert sa["metadata"]["namespace"] == NAMESPACE
    pod = of_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == OPERATOR_SA
    assert pod["automountServiceAccountToken"] is True


def test_rbac_and_service_accounts_can_be_left_to_the_user(render):
    docs = render({"operator": {"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "ops"}},
                   "extractor": {"serviceAccount": {"create": False, "name": "jobs"}}})
    assert not of_kind(docs, *RBAC_KINDS, "ServiceAccount")
    pod = of_kind(docs, "Deployment")[0]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "ops"
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["QD_JOB_SERVICE_ACCOUNT"] == "jobs"


def test_an_existing_service_account_must_be_named(render_error):
    assert "operator.serviceAccount.name is required" in render_error(
        {"operator": {"serviceAccount": {"create": False}}})
    assert "extractor.serviceAccount.name is required" in render_error(
        {"extractor": {"serviceAccount": {"create": False}}})


def test_rbac_only_install(render):
    """operator.enabled=false: the identities and permissions, for an operator run elsewhere."""
    docs = render({"operator": {"enabled": False}, "metrics": {"serviceMonitor": {"enabled": True}},
                   "networkPolicy": {"enabled": True}}, minimal=False)
    assert {d["kind"] for d in docs} == {"ServiceAccount", "ClusterRole", "ClusterRoleBinding"}


def test_every_object_is_labelled(render):
    docs = render({"commonLabels": {"team": "qd"}, "operator": {"watchNamespaces": ["gazettes"]},
                   "metrics": {"serviceMonitor": {"enabled": True}}, "networkPolicy": {"enabled": True}})
    for doc in docs:
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "qd-extractor"
        assert labels["app.kubernetes.io/instance"] == "qd"
        assert labels["app.kubernetes.io/managed-by"] == "Helm"
        assert labels["helm.sh/chart"] == "qd-extractor-0.1.0"
        assert labels["team"] == "qd"
        if doc["kind"] not in CLUSTER_SCOPED:
            assert doc["metadata"]["namespace"]
