"""The CRD file, checked offline: structural schema, the design's API surface, and defaults that
agree with the operator's own (spec.py applies the same defaults when it parses)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from qd_core.states import Stage, State
from qd_operator import model, spec, status
from qd_operator.model import RangeState

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def crd() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "crds" / "extractionrun.yaml").read_text())


@pytest.fixture(scope="module")
def version(crd: dict[str, Any]) -> dict[str, Any]:
    (v,) = crd["spec"]["versions"]
    return v


def props(version: dict[str, Any], *path: str) -> dict[str, Any]:
    node = version["schema"]["openAPIV3Schema"]
    for key in path:
        node = node["properties"][key]
    return node


def nodes(node: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, node
    for key, child in (node.get("properties") or {}).items():
        yield from nodes(child, f"{path}.{key}")
    if "items" in node:
        yield from nodes(node["items"], f"{path}[]")


def test_names_group_and_scope(crd: dict[str, Any], version: dict[str, Any]) -> None:
    assert crd["metadata"]["name"] == f"{model.PLURAL}.{model.GROUP}"
    assert crd["spec"]["group"] == model.GROUP and crd["spec"]["scope"] == "Namespaced"
    names = crd["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"], names["categories"]) == (
        model.KIND, model.PLURAL, ["xrun"], ["queridodiario"])
    assert version["name"] == model.VERSION and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}


def test_schema_is_structural(version: dict[str, Any]) -> None:
    root = version["schema"]["openAPIV3Schema"]
    for path, node in nodes(root):
        assert "type" in node, f"{path or 'root'} has no type"
        assert "$ref" not in node and "additionalProperties" not in node, path
        if node["type"] == "array":
            assert "items" in node and "maxItems" in node, f"{path}: lists are bounded for CEL costs"


def test_printer_columns(version: dict[str, Any]) -> None:
    columns = {c["name"]: c for c in version["additionalPrinterColumns"]}
    assert [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")] == [
        "Mode", "Progress", "Done", "Succeeded", "Age"]
    assert columns["Mode"]["jsonPath"] == ".spec.selection.mode"
    assert columns["Done"]["jsonPath"] == ".status.done"
    assert columns["Succeeded"]["jsonPath"] == '.status.conditions[?(@.type=="Succeeded")].status'
    assert columns["Age"]["type"] == "date"


def test_cel_rules_are_present_with_messages(version: dict[str, Any]) -> None:
    def rules(*path: str) -> list[str]:
        node = props(version, *path)
        assert all(r.get("message") for r in node["x-kubernetes-validations"])
        return [r["rule"] for r in node["x-kubernetes-validations"]]

    assert "self == oldSelf" in rules("spec", "selection")
    assert any("dateFrom <= self.dateTo" in r for r in rules("spec", "selection"))
    assert any("'excerpts' in self" in r for r in rules("spec", "stages"))
    for stage in ("extract", "excerpts"):
        tier_rules = rules("spec", "memoryTiers", stage)
        assert any("isLessThan" in r for r in tier_rules) and any("isQuantity" in r for r in tier_rules)
        assert props(version, "spec", "memoryTiers", stage)["maxItems"] == spec.MAX_TIERS


def test_ibge_pattern_and_enums(version: dict[str, Any]) -> None:
    assert props(version, "spec", "selection", "territories")["items"]["pattern"] == "^[0-9]{7}$"
    assert props(version, "spec", "selection", "mode")["enum"] == ["UNPROCESSED", "DAILY", "ALL"]
    assert props(version, "spec", "stages")["items"]["enum"] == ["extract", "excerpts"]


def test_defaults_match_the_operator(version: dict[str, Any]) -> None:
    s = ("spec",)
    assert props(version, *s, "stages")["default"] == list(spec.DEFAULT_STAGES)
    assert props(version, *s, "ranges", "gazettesPerRange")["default"] == spec.DEFAULT_GAZETTES_PER_RANGE
    assert props(version, *s, "parallelism")["default"] == spec.DEFAULT_PARALLELISM
    for stage, tiers in spec.DEFAULT_TIERS.items():
        assert props(version, *s, "memoryTiers", stage)["default"] == list(tiers)
    assert props(version, *s, "retriesPerRange")["default"] == spec.DEFAULT_RETRIES
    assert props(version, *s, "maxSplitDepth")["default"] == spec.DEFAULT_MAX_SPLIT_DEPTH
    assert props(version, *s, "activeDeadlineSeconds")["default"] == spec.DEFAULT_DEADLINE
    assert props(version, *s, "workDirSizeLimit")["default"] == spec.DEFAULT_WORK_DIR_SIZE
    assert props(version, *s, "serviceRefs", "configMapName")["default"] == spec.DEFAULT_CONFIG_MAP
    assert props(version, *s, "serviceRefs", "secretName")["default"] == spec.DEFAULT_SECRET
    assert props(version, *s, "image", "pullPolicy")["default"] == spec.DEFAULT_PULL_POLICY


def test_status_lists_are_capped_at_twenty(version: dict[str, Any]) -> None:
    assert props(version, "status", "failedRanges")["maxItems"] == 20
    assert props(version, "status", "quarantined")["maxItems"] == 20
    conditions = props(version, "status", "conditions")
    assert conditions["x-kubernetes-list-type"] == "map" and conditions["x-kubernetes-list-map-keys"] == ["type"]


def test_status_written_by_the_operator_fits_the_schema(version: dict[str, Any]) -> None:
    progress = status.Progress(
        stages=(Stage.EXTRACT, Stage.EXCERPTS), planned_gazettes=10,
        ranges={RangeState.FAILED: 1, RangeState.RUNNING: 1},
        gazettes={Stage.EXTRACT: {State.SUCCEEDED: 4}},
        failed_ranges=[{"id": "r0001", "low": 1, "high": 9, "stage": "extract", "reason": "ExitCode3: x"}],
        quarantined=[{"gazetteId": 5, "filePath": "a.pdf"}], planned_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    written = status.compute(None, status.Facts(generation=1, suspended=False, plan=status.Plan.PLANNED,
                                                now=dt.datetime(2026, 1, 1, 1, tzinfo=dt.UTC), progress=progress))
    assert "eta" in written
    schema = props(version, "status")
    for key, value in written.items():
        assert key in schema["properties"], f"status.{key} is not in the CRD (it would be pruned)"
        node = schema["properties"][key]
        if isinstance(value, dict):
            assert set(value) <= set(node["properties"]), key
        if isinstance(value, list) and value:
            assert set(value[0]) <= set(node["items"]["properties"]), key
            assert set(node["items"].get("required", [])) <= set(value[0]), key
