"""The operator Deployment and its companions, rendered and parsed: one hardened replica whose
environment the operator's own settings parser accepts, credentials only by reference."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from qd_operator import cli
from qd_operator.settings import OperatorSettings

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "qd-extractor"


def kind(docs: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == name]


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = kind(docs, "Deployment")
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return c


def env_of(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container(docs)["env"]}


def test_one_standalone_replica_recreated(render):
    (deployment,) = kind(render(), "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    c = container(render())
    assert c["command"] == ["qd-operator"]
    # qd-operator always runs kopf standalone (cli.py); the chart must not ask for peering.
    assert not any("peering" in a or "priority" in a for a in c["args"])


def test_probes_hit_kopfs_liveness_endpoint(render, capsys):
    c = container(render())
    liveness = next(a for a in c["args"] if a.startswith("--liveness="))
    assert liveness == "--liveness=http://0.0.0.0:8081/healthz"
    # The CLI's own default is the same, so running the image by hand behaves alike.
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert "(default: http://0.0.0.0:8081/healthz)" in " ".join(capsys.readouterr().out.split())
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"metrics": 8080, "health": 8081}
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "health"}


def test_hardened(render):
    docs = render()
    pod = kind(docs, "Deployment")[0]["spec"]["template"]["spec"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["enableServiceLinks"] is False
    c = container(docs)
    assert c["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "runAsNonRoot": True, "privileged": False, "capabilities": {"drop": ["ALL"]}}
    assert c["resources"]["requests"]["memory"] and c["resources"]["limits"]["memory"]
    assert c["volumeMounts"] == [{"name": "tmp", "mountPath": "/tmp"}]
    assert pod["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}]


def test_the_operators_settings_parser_accepts_the_rendered_environment(render):
    """The chart speaks the operator's variable names: resolve the references with fake values and
    parse them with OperatorSettings.from_env."""
    docs = render({"operator": {"watchNamespaces": ["a", "b"], "reconcileSeconds": 2.5},
                   "extractor": {"image": {"registry": "registry.example.org:5000", "repository": "qd/extractor",
                                           "tag": "1.2.3", "pullPolicy": "Always"},
                                 "jobTTLSeconds": 1000000},
                   "database": {"port": 6432}})
    env: dict[str, str] = {}
    for item in container(docs)["env"]:
        if "value" in item:
            env[item["name"]] = item["value"]
        else:
            ref = item["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "qd-db"
            env[item["name"]] = f"<{ref['key']}>"
    settings = OperatorSettings.from_env(env)
    assert settings.database.host == "postgres.db.svc"
    assert settings.database.port == 6432
    assert settings.database.dbname == "queridodiario"
    assert settings.database.user == "<POSTGRES_USER>"
    assert settings.database.password == "<POSTGRES_PASSWORD>"
    assert settings.namespaces == ("a", "b")
    assert settings.job_service_account == "qd-qd-extractor-job"
    assert settings.default_image.repository == "registry.example.org:5000/qd/extractor"
    assert settings.default_image.tag == "1.2.3"
    assert settings.default_image.pull_policy == "Always"
    assert settings.reconcile_seconds == 2.5
    assert settings.job_ttl_seconds == 1000000
    assert settings.metrics_port == 8080


def test_defaults_follow_the_app_version(render):
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    docs = render()
    c = container(docs)
    assert c["image"] == f"localhost/qd-operator:{chart['appVersion']}"
    env = env_of(docs)
    assert env["QD_DEFAULT_IMAGE"] == f"localhost/qd-extractor:{chart['appVersion']}"
    assert "QD_JOB_TTL_SECONDS" not in env
    assert "POSTGRES_PORT" not in env


def test_database_settings_may_come_from_a_configmap(render):
    docs = render({"database": {"host": "", "name": "", "existingConfigMap": "qd-services"}})
    c = container(docs)
    assert c["envFrom"] == [{"configMapRef": {"name": "qd-services"}}]
    assert not {"POSTGRES_HOST", "POSTGRES_DB", "POSTGRES_PORT"} & set(env_of(docs))


def test_credentials_only_by_reference(render):
    docs = render({"database": {"secretKeys": {"user": "username", "password": "pw"}}})
    assert not kind(docs, "Secret")
    env = env_of(docs)
    assert env["POSTGRES_USER"] == {"secretKeyRef": {"name": "qd-db", "key": "username"}}
    assert env["POSTGRES_PASSWORD"] == {"secretKeyRef": {"name": "qd-db", "key": "pw"}}
    # No plain value anywhere looks like a credential.
    for name, value in env.items():
        if any(word in name for word in ("PASSWORD", "SECRET", "TOKEN", "KEY")):
            assert isinstance(value, dict), name


@pytest.mark.parametrize(("values", "message"), [
    ({"database": {"existingSecret": ""}}, "database.existingSecret is required"),
    ({"database": {"host": ""}}, "database.host is required"),
    ({"database": {"name": ""}}, "database.name is required"),
])
def test_missing_database_settings_are_refused(render_error, values, message):
    assert message in render_error(values)


def test_the_schema_has_no_place_for_a_password():
    schema = json.loads((CHART / "values.schema.json").read_text())
    db = schema["properties"]["database"]
    assert db["additionalProperties"] is False
    assert not {k for k in db["properties"] if "password" in k.lower()}


def test_metrics_service_and_service_monitor(render):
    docs = render({"metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prom"},
                                                  "scrapeTimeout": "10s"}}})
    (service,) = kind(docs, "Service")
    selector = kind(docs, "Deployment")[0]["spec"]["selector"]["matchLabels"]
    assert service["spec"]["selector"] == selector
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 8080, "targetPort": "metrics", "protocol": "TCP"}]
    (monitor,) = kind(docs, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "prom"
    assert monitor["spec"]["selector"]["matchLabels"] == selector
    assert set(selector.items()) <= set(service["metadata"]["labels"].items())
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s",
                                             "scrapeTimeout": "10s"}]
    assert not kind(render(), "ServiceMonitor")


def test_metrics_off(render):
    docs = render({"metrics": {"enabled": False, "serviceMonitor": {"enabled": True}}})
    assert not kind(docs, "Service") and not kind(docs, "ServiceMonitor")
    assert env_of(docs)["QD_METRICS_PORT"] == "0"
    assert [p["name"] for p in container(docs)["ports"]] == ["health"]


def test_network_policy(render):
    assert not kind(render(), "NetworkPolicy")
    peer = {"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}
    db_peer = {"podSelector": {"matchLabels": {"app": "postgres"}}}
    docs = render({"networkPolicy": {"enabled": True, "metricsFrom": [peer], "apiServerCIDRs": ["10.0.0.1/32"],
                                     "databaseTo": [db_peer], "databasePort": 6432,
                                     "extraEgress": [{"ports": [{"port": 9200}]}]}})
    (policy,) = kind(docs, "NetworkPolicy")
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"] == kind(docs, "Deployment")[0]["spec"]["selector"]["matchLabels"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert spec["ingress"] == [{"ports": [{"port": "metrics", "protocol": "TCP"}], "from": [peer]}]
    egress = spec["egress"]
    assert egress[0] == {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]}
    assert egress[1] == {"ports": [{"port": 443, "protocol": "TCP"}, {"port": 6443, "protocol": "TCP"}],
                         "to": [{"ipBlock": {"cidr": "10.0.0.1/32"}}]}
    assert egress[2] == {"ports": [{"port": 6432, "protocol": "TCP"}], "to": [db_peer]}
    assert egress[3] == {"ports": [{"port": 9200}]}


def test_scheduling_and_pod_metadata_pass_through(render):
    docs = render({"imagePullSecrets": [{"name": "regcred"}],
                   "operator": {"nodeSelector": {"pool": "system"}, "tolerations": [{"key": "k", "operator": "Exists"}],
                                "affinity": {"nodeAffinity": {}}, "priorityClassName": "high",
                                "podAnnotations": {"a": "b"}, "podLabels": {"c": "d"}, "verbose": True}})
    (deployment,) = kind(docs, "Deployment")
    template = deployment["spec"]["template"]
    pod = template["spec"]
    assert pod["nodeSelector"] == {"pool": "system"}
    assert pod["tolerations"] == [{"key": "k", "operator": "Exists"}]
    assert pod["affinity"] == {"nodeAffinity": {}}
    assert pod["priorityClassName"] == "high"
    assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    assert template["metadata"]["annotations"] == {"a": "b"}
    assert template["metadata"]["labels"]["c"] == "d"
    assert "--verbose" in container(docs)["args"]


def test_long_release_names_stay_valid(render):
    docs = render(release="r" * 53)  # the longest release name Helm accepts
    for doc in docs:
        name = doc["metadata"]["name"]
        assert len(name) <= 63, name
        assert name == name.strip("-")
