"""The Indexed Job manifest of a wave: every field the design asks for."""

from __future__ import annotations

import re
from typing import Any

import pytest

from qd_core.states import Stage
from qd_operator import jobs, model, spec, waves

CTX = jobs.JobContext(run_name="daily-2024-05", run_uid="3f0c8a52-uid", namespace="qd", service_account="qd-job")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def run_spec(**extra: Any) -> spec.RunSpec:
    raw = {"selection": {"mode": "UNPROCESSED", "dateFrom": "2024-01-01", "dateTo": "2024-05-31",
                         "territories": ["2704302", "2700300"]},
           "image": {"repository": "localhost/qd-extractor", "tag": "0.1.0"}, "parallelism": 4,
           "resources": {"cpu": "500m"}, **extra}
    return spec.parse(raw)


def rows(n: int, stage: Stage = Stage.EXTRACT) -> list[model.RangeRow]:
    return [model.RangeRow(f"r{i:04d}", stage, i * 100 + 1, i * 100 + 100, 100) for i in range(n)]


@pytest.fixture()
def job() -> dict[str, Any]:
    return jobs.build_job(CTX, run_spec(), Stage.EXTRACT, 1, 3, rows(10))


def env_of(job: dict[str, Any]) -> dict[str, Any]:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


def test_name_labels_and_annotations(job: dict[str, Any]) -> None:
    meta = job["metadata"]
    assert meta["name"] == "daily-2024-05-extract-t1-w3" and meta["namespace"] == "qd"
    assert meta["labels"][model.LABEL_RUN] == "daily-2024-05"
    assert (meta["labels"][model.LABEL_STAGE], meta["labels"][model.LABEL_TIER], meta["labels"][model.LABEL_WAVE]) == (
        "extract", "1", "3")
    assert meta["labels"][model.LABEL_RUN_UID] == CTX.run_uid
    assert job["spec"]["template"]["metadata"]["labels"] == meta["labels"]
    assert meta["annotations"][model.ANNOTATION_RANGES] == ",".join(f"r{i:04d}" for i in range(10))
    assert jobs.range_ids(job) == [f"r{i:04d}" for i in range(10)]
    assert meta["annotations"][model.ANNOTATION_MEMORY] == "512Mi"


def test_indexed_job_fields(job: dict[str, Any]) -> None:
    s = job["spec"]
    assert s["completionMode"] == "Indexed"
    assert (s["completions"], s["parallelism"], s["maxFailedIndexes"]) == (10, 4, 10)
    assert s["backoffLimitPerIndex"] == 2 and s["podReplacementPolicy"] == "Failed"
    assert s["suspend"] is False and "ttlSecondsAfterFinished" not in s
    assert "ownerReferences" not in job["metadata"]  # kopf.adopt adds it


def test_parallelism_never_exceeds_the_ranges_or_the_wave() -> None:
    assert jobs.build_job(CTX, run_spec(), Stage.EXTRACT, 0, 0, rows(2))["spec"]["parallelism"] == 2
    wave = waves.Wave(Stage.EXTRACT, 0, 7, tuple(rows(12)), parallelism=3)
    built = jobs.build_wave_job(CTX, run_spec(), wave)
    assert built["spec"]["parallelism"] == 3 and built["metadata"]["name"].endswith("-w7")


def test_pod_failure_policy(job: dict[str, Any]) -> None:
    rules = job["spec"]["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}
    assert rules[1] == {"action": "FailIndex", "onExitCodes": {"containerName": "extractor", "operator": "In",
                                                               "values": [137]}}
    assert rules[2] == {"action": "FailJob", "onExitCodes": {"containerName": "extractor", "operator": "In",
                                                             "values": [2]}}
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"  # required by podFailurePolicy


def test_memory_request_equals_limit_and_reaches_the_process(job: dict[str, Any]) -> None:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["resources"] == {"requests": {"memory": "512Mi", "cpu": "500m"},
                                      "limits": {"memory": "512Mi", "cpu": "500m"}}
    assert env_of(job)["MEMORY_LIMIT_BYTES"] == {"resourceFieldRef": {
        "containerName": "extractor", "resource": "limits.memory", "divisor": "1"}}


def test_environment_carries_run_selection_and_ranges(job: dict[str, Any]) -> None:
    env = env_of(job)
    assert env["QD_RUN_ID"] == CTX.run_uid
    assert env["EXECUTION_MODE"] == "UNPROCESSED" and env["QD_RETRY_TERMINAL"] == "false"
    assert (env["QD_DATE_FROM"], env["QD_DATE_TO"]) == ("2024-01-01", "2024-05-31")
    assert env["QD_TERRITORIES"] == "2704302,2700300"
    assert env["QD_RANGES"].split(",")[:2] == ["1:100", "101:200"] and len(env["QD_RANGES"].split(",")) == 10
    assert env["QD_WORK_DIR"] == env["TMPDIR"] == jobs.WORK_DIR


def test_environment_matches_what_the_pod_reads(job: dict[str, Any]) -> None:
    from qd_core import selection

    env = {k: v for k, v in env_of(job).items() if isinstance(v, str)}
    assert selection.from_env(env) == run_spec().selection


def test_unset_filters_are_not_passed() -> None:
    env = env_of(jobs.build_job(CTX, spec.parse({"selection": {"mode": "ALL", "retryTerminal": True},
                                                 "image": {"repository": "x"}}), Stage.EXTRACT, 0, 0, rows(1)))
    assert env["QD_RETRY_TERMINAL"] == "true"
    assert not {"QD_DATE_FROM", "QD_DATE_TO", "QD_TERRITORIES"} & set(env)


def test_services_by_reference_only(job: dict[str, Any]) -> None:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["envFrom"] == [{"configMapRef": {"name": "qd-services"}},
                                    {"secretRef": {"name": "qd-credentials"}}]
    assert not any(e["name"].startswith(("POSTGRES", "STORAGE", "OPENSEARCH")) for e in container["env"])


def test_pod_is_hardened(job: dict[str, Any]) -> None:
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["serviceAccountName"] == "qd-job" and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    assert pod["activeDeadlineSeconds"] == 3600


def test_work_dir_is_a_size_limited_empty_dir(job: dict[str, Any]) -> None:
    pod = job["spec"]["template"]["spec"]
    assert pod["volumes"] == [{"name": "work", "emptyDir": {"sizeLimit": "2Gi"}}]
    assert pod["containers"][0]["volumeMounts"] == [{"name": "work", "mountPath": "/work"}]


def test_stage_chooses_command_image_and_tiers() -> None:
    s = run_spec(rerankImage={"repository": "localhost/qd-rerank", "tag": "2"})
    extract = jobs.build_job(CTX, s, Stage.EXTRACT, 0, 0, rows(1))["spec"]["template"]["spec"]["containers"][0]
    excerpts = jobs.build_job(CTX, s, Stage.EXCERPTS, 1, 0, rows(1, Stage.EXCERPTS))
    container = excerpts["spec"]["template"]["spec"]["containers"][0]
    assert extract["command"] == ["qd-extract", "extract"] and extract["image"] == "localhost/qd-extractor:0.1.0"
    assert container["command"] == ["qd-extract", "excerpts"] and container["image"] == "localhost/qd-rerank:2"
    assert container["resources"]["limits"]["memory"] == "2Gi"
    assert excerpts["metadata"]["name"] == "daily-2024-05-excerpts-t1-w0"


def test_suspend_and_job_ttl_are_passed() -> None:
    ctx = jobs.JobContext("r", "u", "ns", "sa", job_ttl_seconds=600)
    built = jobs.build_job(ctx, run_spec(suspend=True), Stage.EXTRACT, 0, 0, rows(1))
    assert built["spec"]["suspend"] is True and built["spec"]["ttlSecondsAfterFinished"] == 600


def test_no_cpu_means_no_cpu_resources() -> None:
    raw = {"selection": {"mode": "ALL"}, "image": {"repository": "x"}}
    container = jobs.build_job(CTX, spec.parse(raw), Stage.EXTRACT, 0, 0, rows(1))["spec"]["template"]["spec"][
        "containers"][0]
    assert container["resources"] == {"requests": {"memory": "256Mi"}, "limits": {"memory": "256Mi"}}


def test_an_empty_wave_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one range"):
        jobs.build_job(CTX, run_spec(), Stage.EXTRACT, 0, 0, [])


@pytest.mark.parametrize("run", ["a" * 63, "a" * 40, "x" * 253, "name.with.dots", "UPPER-case", "ends-with-dash-" * 5])
def test_long_or_odd_run_names_give_valid_unique_job_names(run: str) -> None:
    name = jobs.job_name(run, Stage.EXCERPTS, 5, 123)
    assert len(name) <= 57 and DNS_LABEL.match(name), name  # room for the pods' "-<index>" hostnames
    assert name.endswith("-excerpts-t5-w123")
    assert jobs.job_name(run, Stage.EXCERPTS, 5, 123) == name  # deterministic
    assert jobs.job_name(run + "b", Stage.EXCERPTS, 5, 123) != name


def test_long_run_names_are_valid_label_values() -> None:
    built = jobs.build_job(jobs.JobContext("r" * 200, "u", "ns", "sa"), run_spec(), Stage.EXTRACT, 0, 0, rows(1))
    assert len(built["metadata"]["labels"][model.LABEL_RUN]) <= 63
