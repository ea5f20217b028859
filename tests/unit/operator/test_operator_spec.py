"""Parsing an ExtractionRun spec: defaults, typed values and errors that name the field path."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
import yaml

from qd_core import selection
from qd_core.states import Stage
from qd_operator import spec

ROOT = Path(__file__).resolve().parents[3]
IMAGE = {"repository": "localhost/qd-extractor", "tag": "0.1.0"}


def minimal(**extra: Any) -> dict[str, Any]:
    return {"selection": {"mode": "UNPROCESSED"}, "image": dict(IMAGE), **extra}


def error_path(raw: dict[str, Any]) -> str:
    with pytest.raises(spec.SpecError) as info:
        spec.parse(raw)
    return info.value.path


def test_defaults_fill_a_minimal_spec() -> None:
    run = spec.parse(minimal())
    assert run.selection == selection.Selection(mode=selection.Mode.UNPROCESSED)
    assert run.stages == (Stage.EXTRACT, Stage.EXCERPTS)
    assert run.gazettes_per_range == 500 and run.target_bytes_per_range == 0
    assert run.parallelism == 2 and run.wave_size == 16
    assert [t.quantity for t in run.tiers(Stage.EXTRACT)] == ["256Mi", "512Mi", "1Gi"]
    assert [t.bytes for t in run.tiers(Stage.EXCERPTS)] == [2**30, 2**31]
    assert (run.retries_per_range, run.max_split_depth, run.active_deadline_seconds) == (2, 4, 3600)
    assert run.suspend is False and run.ttl_seconds_after_finished is None
    assert (run.config_map_name, run.secret_name, run.work_dir_size_limit) == ("qd-services", "qd-credentials", "2Gi")
    assert run.image.ref == "localhost/qd-extractor:0.1.0" and run.image.pull_policy == "IfNotPresent"


def test_full_selection_becomes_the_shared_selection() -> None:
    run = spec.parse(minimal(selection={"mode": "all", "dateFrom": "2024-01-01", "dateTo": "2024-05-31",
                                        "territories": ["2704302", "2700300", "2704302"], "retryTerminal": True}))
    assert run.selection == selection.Selection(
        mode=selection.Mode.ALL, date_from=dt.date(2024, 1, 1), date_to=dt.date(2024, 5, 31),
        territories=("2704302", "2700300"), retry_terminal=True)


def test_selection_round_trips_through_json() -> None:
    sel = spec.parse(minimal(selection={"mode": "DAILY", "dateTo": "2024-02-01", "territories": ["2704302"]})).selection
    assert spec.parse_selection(spec.selection_to_json(sel)) == sel


def test_rerank_image_serves_excerpts_only() -> None:
    run = spec.parse(minimal(rerankImage={"repository": "localhost/qd-rerank", "tag": "1"}))
    assert run.image_for(Stage.EXTRACT).repository == "localhost/qd-extractor"
    assert run.image_for(Stage.EXCERPTS).repository == "localhost/qd-rerank"
    assert spec.parse(minimal()).image_for(Stage.EXCERPTS).repository == "localhost/qd-extractor"


def test_operator_default_image_applies_when_spec_has_none() -> None:
    raw = minimal()
    del raw["image"]
    default = spec.Image("registry/qd", "9")
    assert spec.parse(raw, default_image=default).image == default
    with pytest.raises(spec.SpecError, match=r"^spec\.image: required"):
        spec.parse(raw)


def test_stages_are_kept_in_pipeline_order() -> None:
    assert spec.parse(minimal(stages=["excerpts", "extract"])).stages == (Stage.EXTRACT, Stage.EXCERPTS)
    assert spec.parse(minimal(stages=["extract"])).stages == (Stage.EXTRACT,)


@pytest.mark.parametrize(("patch", "path", "words"), [
    ({"selection": None}, "spec.selection", "required"),
    ({"selection": {}}, "spec.selection.mode", "required"),
    ({"selection": {"mode": "WEEKLY"}}, "spec.selection.mode", "WEEKLY"),
    ({"selection": {"mode": "ALL", "dateFrom": "2024-13-01"}}, "spec.selection.dateFrom", "not a date"),
    ({"selection": {"mode": "ALL", "dateFrom": "2024-02-01", "dateTo": "2024-01-01"}}, "spec.selection.dateTo",
     "before dateFrom"),
    ({"selection": {"mode": "ALL", "territories": ["2704302", "27043"]}}, "spec.selection.territories[1]",
     "IBGE"),
    ({"selection": {"mode": "ALL", "retryTerminal": "yes"}}, "spec.selection.retryTerminal", "true or false"),
    ({"stages": []}, "spec.stages", "non-empty"),
    ({"stages": ["excerpts"]}, "spec.stages", "requires 'extract'"),
    ({"stages": ["extract", "rerank"]}, "spec.stages[1]", "not a stage"),
    ({"stages": ["extract", "extract"]}, "spec.stages[1]", "twice"),
    ({"ranges": {"gazettesPerRange": 0}}, "spec.ranges.gazettesPerRange", "between 1 and 100000"),
    ({"ranges": {"targetBytesPerRange": -1}}, "spec.ranges.targetBytesPerRange", "at least 0"),
    ({"parallelism": 257}, "spec.parallelism", "between 1 and 256"),
    ({"parallelism": True}, "spec.parallelism", "not an integer"),
    ({"memoryTiers": {"extract": ["256Mi", "256Mi"]}}, "spec.memoryTiers.extract[1]", "strictly increasing"),
    ({"memoryTiers": {"extract": ["1Gi", "512Mi"]}}, "spec.memoryTiers.extract[1]", "not larger"),
    ({"memoryTiers": {"excerpts": ["1Gi", "lots"]}}, "spec.memoryTiers.excerpts[1]", "not a Kubernetes quantity"),
    ({"memoryTiers": {"extract": ["32Mi"]}}, "spec.memoryTiers.extract[0]", "minimum 64Mi"),
    ({"memoryTiers": {"extract": []}}, "spec.memoryTiers.extract", "1 to 6"),
    ({"memoryTiers": {"extract": [f"{i}Gi" for i in range(1, 8)]}}, "spec.memoryTiers.extract", "1 to 6"),
    ({"retriesPerRange": 11}, "spec.retriesPerRange", "between 0 and 10"),
    ({"maxSplitDepth": -1}, "spec.maxSplitDepth", "between 0 and 16"),
    ({"activeDeadlineSeconds": 0}, "spec.activeDeadlineSeconds", "between"),
    ({"ttlSecondsAfterFinished": -5}, "spec.ttlSecondsAfterFinished", "at least 0"),
    ({"image": {"tag": "1"}}, "spec.image.repository", "required"),
    ({"image": {"repository": "x", "tag": "bad tag"}}, "spec.image.tag", "not an image tag"),
    ({"image": {"repository": "x", "pullPolicy": "Sometimes"}}, "spec.image.pullPolicy", "Sometimes"),
    ({"resources": {"cpu": "half"}}, "spec.resources.cpu", "quantity"),
    ({"workDirSizeLimit": "big"}, "spec.workDirSizeLimit", "quantity"),
    ({"serviceRefs": {"secretName": "Bad_Name"}}, "spec.serviceRefs.secretName", "object name"),
    ({"ranges": []}, "spec.ranges", "object"),
])
def test_errors_name_the_field(patch: dict[str, Any], path: str, words: str) -> None:
    raw = minimal()
    raw.update(patch)
    with pytest.raises(spec.SpecError) as info:
        spec.parse(raw)
    assert info.value.path == path
    assert str(info.value).startswith(f"{path}: ")
    assert words in str(info.value)


def test_sample_run_parses() -> None:
    sample = yaml.safe_load((ROOT / "examples" / "extractionrun.yaml").read_text())
    run = spec.parse(sample["spec"])
    assert run.selection.territories == ("2704302", "2700300")
    assert run.parallelism == 4 and run.cpu == "500m" and run.ttl_seconds_after_finished == 604800


def test_spec_is_not_modified_by_parsing() -> None:
    raw = minimal(memoryTiers={"extract": ["300Mi"]})
    before = copy.deepcopy(raw)
    spec.parse(raw)
    assert raw == before
    assert error_path(minimal(memoryTiers={"extract": ["300Mi", "1"]})) == "spec.memoryTiers.extract[1]"
