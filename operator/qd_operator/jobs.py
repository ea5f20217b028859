"""The Indexed Job manifest of one wave (pure: a dict in, a dict out).

Names are deterministic, so a retried handler finds the Job it created before (409 = success)
instead of creating a twin. Everything the pod needs comes from the spec, the range rows and the
referenced ConfigMap/Secret; no service setting is ever inlined.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any

from qd_core.states import Stage
from qd_operator import model, waves
from qd_operator.spec import RunSpec

MAX_NAME = 63
#: An Indexed Job's pods get the hostname `<job>-<index>`, which must be a DNS label (≤ 63), so the
#: apiserver refuses Job names without room for "-" and the largest index; 57 leaves five digits.
MAX_JOB_NAME = MAX_NAME - 6
#: Where the emptyDir is mounted; QD_WORK_DIR and TMPDIR point here (the root filesystem is read-only).
WORK_DIR = "/work"
#: Exit codes of `qd-extract` (see job_image/qd_extractor/cli.py) the podFailurePolicy acts on.
EXIT_CONFIG = 2
EXIT_OOM = 137
#: Non-root ids the pod runs as (the image must not need root; files must be world-readable).
RUN_AS = 10001

_INVALID = re.compile(r"[^a-z0-9-]+")


@dataclasses.dataclass(frozen=True)
class JobContext:
    """Who the Job belongs to and operator-wide settings (not part of the CR)."""

    run_name: str
    run_uid: str
    namespace: str
    #: The Job pods' service account (`<release>-job`), which has no API permissions.
    service_account: str
    #: Job.spec.ttlSecondsAfterFinished; None keeps finished Jobs until the run is deleted.
    job_ttl_seconds: int | None = None


def job_name(run_name: str, stage: Stage, tier: int, wave: int) -> str:
    """`<run>-<stage>-t<tier>-w<wave>`, a DNS label ≤ 57 chars (run part trimmed + hashed when long)."""
    suffix = f"-{stage.value}-t{tier}-w{wave}"
    base = _INVALID.sub("-", run_name.lower()).strip("-") or "run"
    if len(base) + len(suffix) <= MAX_JOB_NAME and base == run_name:
        return base + suffix
    digest = hashlib.sha256(run_name.encode()).hexdigest()[:8]
    keep = MAX_JOB_NAME - len(suffix) - len(digest) - 1
    return f"{base[:keep].rstrip('-')}-{digest}{suffix}"


def label_value(value: str) -> str:
    """A label value (≤ 63 chars): long values keep a prefix and gain a hash."""
    if len(value) <= MAX_NAME:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:8]
    return f"{value[:MAX_NAME - 9].rstrip('-.')}-{digest}"


def labels(ctx: JobContext, stage: Stage, tier: int, wave: int) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": "qd-extractor",
        "app.kubernetes.io/component": stage.value,
        "app.kubernetes.io/managed-by": "qd-operator",
        model.LABEL_RUN: label_value(ctx.run_name),
        model.LABEL_RUN_UID: ctx.run_uid,
        model.LABEL_STAGE: stage.value,
        model.LABEL_TIER: str(tier),
        model.LABEL_WAVE: str(wave),
    }


def selection_env(spec: RunSpec) -> list[dict[str, Any]]:
    """The selection, in the variables qd_core.selection.from_env reads."""
    sel = spec.selection
    env = [{"name": "EXECUTION_MODE", "value": sel.mode.value},
           {"name": "QD_RETRY_TERMINAL", "value": "true" if sel.retry_terminal else "false"}]
    if sel.date_from:
        env.append({"name": "QD_DATE_FROM", "value": sel.date_from.isoformat()})
    if sel.date_to:
        env.append({"name": "QD_DATE_TO", "value": sel.date_to.isoformat()})
    if sel.territories:
        env.append({"name": "QD_TERRITORIES", "value": ",".join(sel.territories)})
    return env


def build_wave_job(ctx: JobContext, spec: RunSpec, wave: waves.Wave) -> dict[str, Any]:
    """The Job of a wave chosen by waves.choose."""
    return build_job(ctx, spec, wave.stage, wave.tier, wave.number, wave.ranges, parallelism=wave.parallelism)


def build_job(ctx: JobContext, spec: RunSpec, stage: Stage, tier: int, wave: int,
              ranges: Sequence[model.RangeRow], *, parallelism: int | None = None) -> dict[str, Any]:
    """The batch/v1 Job of a wave; completion index i works on ranges[i].

    `parallelism` defaults to min(spec.parallelism, len(ranges)); a wave started with fewer free
    pod slots passes its own (a Job rebuilt after a restart may use the default).
    """
    if not ranges:
        raise ValueError("a wave needs at least one range")
    tiers = spec.tiers(stage)
    memory = tiers[tier].quantity
    image = spec.image_for(stage)
    job_labels = labels(ctx, stage, tier, wave)
    completions = len(ranges)
    resources: dict[str, dict[str, str]] = {"requests": {"memory": memory}, "limits": {"memory": memory}}
    if spec.cpu:
        resources["requests"]["cpu"] = spec.cpu
        resources["limits"]["cpu"] = spec.cpu
    env = [
        {"name": "QD_RUN_ID", "value": ctx.run_uid},
        *selection_env(spec),
        {"name": "QD_RANGES", "value": ",".join(r.bounds for r in ranges)},
        {"name": "QD_WORK_DIR", "value": WORK_DIR},
        {"name": "TMPDIR", "value": WORK_DIR},
        {"name": "MEMORY_LIMIT_BYTES", "valueFrom": {"resourceFieldRef": {
            "containerName": model.CONTAINER, "resource": "limits.memory", "divisor": "1"}}},
    ]
    container = {
        "name": model.CONTAINER,
        "image": image.ref,
        "imagePullPolicy": image.pull_policy,
        "command": ["qd-extract", stage.value],
        "env": env,
        "envFrom": [{"configMapRef": {"name": spec.config_map_name}}, {"secretRef": {"name": spec.secret_name}}],
        "resources": resources,
        "volumeMounts": [{"name": "work", "mountPath": WORK_DIR}],
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }
    pod_spec = {
        "restartPolicy": "Never",
        "serviceAccountName": ctx.service_account,
        "automountServiceAccountToken": False,
        "activeDeadlineSeconds": spec.active_deadline_seconds,
        "securityContext": {
            "runAsNonRoot": True, "runAsUser": RUN_AS, "runAsGroup": RUN_AS, "fsGroup": RUN_AS,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": "work", "emptyDir": {"sizeLimit": spec.work_dir_size_limit}}],
    }
    job_spec: dict[str, Any] = {
        "completionMode": "Indexed",
        "completions": completions,
        "parallelism": min(parallelism or spec.parallelism, spec.parallelism, completions),
        "backoffLimitPerIndex": spec.retries_per_range,
        "maxFailedIndexes": completions,
        "podReplacementPolicy": "Failed",
        "podFailurePolicy": {"rules": [
            # Evictions, preemptions, node drains: not the range's fault, no retry burnt.
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            # Killed for memory (or SIGKILL): same-size retries are pointless; the operator splits/promotes.
            {"action": "FailIndex", "onExitCodes": {"containerName": model.CONTAINER, "operator": "In",
                                                    "values": [EXIT_OOM]}},
            # Bad configuration fails every index alike: stop the whole wave at once.
            {"action": "FailJob", "onExitCodes": {"containerName": model.CONTAINER, "operator": "In",
                                                  "values": [EXIT_CONFIG]}},
        ]},
        "suspend": spec.suspend,
        "template": {"metadata": {"labels": dict(job_labels)}, "spec": pod_spec},
    }
    if ctx.job_ttl_seconds is not None:
        job_spec["ttlSecondsAfterFinished"] = ctx.job_ttl_seconds
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": job_name(ctx.run_name, stage, tier, wave),
            "namespace": ctx.namespace,
            "labels": job_labels,
            "annotations": {
                model.ANNOTATION_RANGES: ",".join(r.range_id for r in ranges),
                model.ANNOTATION_MEMORY: memory,
            },
        },
        "spec": job_spec,
    }


def range_ids(job: Mapping[str, Any]) -> list[str]:
    """The range ids of a Job built here, by completion index."""
    return list(model.ranges_annotation((job.get("metadata") or {}).get("annotations")))
