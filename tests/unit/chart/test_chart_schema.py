"""values.schema.json: Helm refuses unknown keys in the chart's own blocks and wrong types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

CHART = Path(__file__).resolve().parents[3] / "charts" / "qd-extractor"


@pytest.mark.parametrize(("values", "fragment"), [
    ({"bogus": 1}, "additional properties 'bogus' not allowed"),
    ({"operator": {"watchNamespace": ["a"]}}, "'watchNamespace' not allowed"),
    ({"operator": {"image": {"digest": "sha256:00"}}}, "'digest' not allowed"),
    ({"operator": {"serviceAccount": {"automount": False}}}, "'automount' not allowed"),
    ({"extractor": {"memoryTiers": ["1Gi"]}}, "'memoryTiers' not allowed"),
    ({"database": {"password": "hunter2"}}, "'password' not allowed"),
    ({"database": {"secretKeys": {"host": "POSTGRES_HOST"}}}, "'host' not allowed"),
    ({"metrics": {"serviceMonitor": {"enable": True}}}, "'enable' not allowed"),
    ({"networkPolicy": {"egress": []}}, "'egress' not allowed"),
])
def test_unknown_keys_are_refused(render_error, values, fragment):
    assert fragment in render_error(values)


@pytest.mark.parametrize(("values", "fragment"), [
    ({"operator": {"watchNamespaces": "gazettes"}}, "/operator/watchNamespaces"),
    ({"operator": {"watchNamespaces": ["Not_A_Namespace"]}}, "does not match pattern"),
    ({"operator": {"watchNamespaces": ["a", "a"]}}, "/operator/watchNamespaces"),
    ({"operator": {"enabled": "yes"}}, "/operator/enabled"),
    ({"operator": {"reconcileSeconds": 0.1}}, "/operator/reconcileSeconds"),
    ({"operator": {"image": {"pullPolicy": "Sometimes"}}}, "/operator/image/pullPolicy"),
    ({"extractor": {"image": {"tag": "sha256:abc"}}}, "/extractor/image/tag"),
    ({"extractor": {"jobTTLSeconds": -1}}, "/extractor/jobTTLSeconds"),
    ({"extractor": {"jobTTLSeconds": "1d"}}, "/extractor/jobTTLSeconds"),
    ({"database": {"port": "5432"}}, "/database/port"),
    ({"database": {"port": 70000}}, "/database/port"),
    ({"metrics": {"port": 8081}}, "/metrics/port"),
    ({"metrics": {"serviceMonitor": {"interval": "often"}}}, "/metrics/serviceMonitor/interval"),
    ({"networkPolicy": {"apiServerCIDRs": ["10.0.0.1"]}}, "/networkPolicy/apiServerCIDRs/0"),
    ({"imagePullSecrets": ["regcred"]}, "/imagePullSecrets/0"),
    ({"commonLabels": {"a": 1}}, "/commonLabels/a"),
])
def test_bad_types_and_values_are_refused(render_error, values, fragment):
    error = render_error(values)
    assert "values don't meet the specifications of the schema" in error
    assert fragment in error


def test_the_defaults_and_ci_values_pass(render, helm_template):
    render()
    for path in sorted((CHART / "ci").glob("*.yaml")):
        proc = helm_template(yaml.safe_load(path.read_text()))
        assert proc.returncode == 0, f"{path.name}: {proc.stderr}"


def test_a_parent_chart_may_pass_globals(render):
    render({"global": {"imageRegistry": "r.example.org"}})


def strict_blocks(schema: dict[str, Any], path: str = "") -> list[str]:
    """Paths of the object schemas that declare properties but allow any other key."""
    loose = []
    if schema.get("type") == "object" and "properties" in schema and schema.get("additionalProperties") is not False:
        loose.append(path or "/")
    for key, sub in schema.get("properties", {}).items():
        loose += strict_blocks(sub, f"{path}/{key}")
    return loose


def test_every_block_of_ours_is_closed():
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert strict_blocks(schema) == []


def test_schema_and_values_describe_the_same_keys():
    schema = json.loads((CHART / "values.schema.json").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())

    def walk(node: dict[str, Any], sub: dict[str, Any], path: str) -> None:
        props = sub.get("properties", {})
        assert set(node) <= set(props), f"{path}: {set(node) - set(props)} missing from the schema"
        for key, value in node.items():
            if isinstance(value, dict) and "properties" in props[key]:
                walk(value, props[key], f"{path}.{key}")
        if sub.get("additionalProperties") is False:
            missing = set(props) - set(node) - {"global"}
            assert not missing, f"{path}: schema keys {missing} have no default in values.yaml"

    walk(values, schema, "")
