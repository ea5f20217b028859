"""Prometheus metrics of the operator (served on QD_METRICS_PORT at /metrics)."""

from __future__ import annotations

import collections
import threading

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from qd_operator import reactions

RUNS = Gauge("qd_runs", "ExtractionRuns this operator reconciles, by phase", ["phase"])
RANGES = Counter("qd_ranges_total", "Ranges finished, by stage and outcome", ["stage", "outcome"])
GAZETTES = Gauge("qd_gazettes", "Gazettes of the runs this operator reconciles, by stage and state",
                 ["namespace", "run", "stage", "state"])
OOM_KILLS = Counter("qd_oom_kills_total", "Ranges whose pod was OOMKilled", ["stage"])
SPLITS = Counter("qd_range_splits_total", "Ranges bisected after an OOM kill", ["stage"])
PROMOTIONS = Counter("qd_range_promotions_total", "Ranges moved to a bigger memory tier", ["stage"])
QUARANTINED = Counter("qd_quarantined_total", "Gazettes quarantined (OOM-killed alone at the top tier)", ["stage"])
JOBS = Counter("qd_jobs_created_total", "Indexed Jobs (waves) created", ["stage"])
RANGE_SECONDS = Histogram("qd_range_duration_seconds", "Wall time of a range from wave start to its outcome",
                          ["stage"], buckets=(10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400))

_OUTCOME = {reactions.Action.SUCCEED: "succeeded", reactions.Action.FAIL: "failed",
            reactions.Action.SPLIT: "split", reactions.Action.PROMOTE: "promoted",
            reactions.Action.QUARANTINE: "quarantined"}


def record(decision: reactions.Decision, duration_s: float | None) -> None:
    """Count one applied decision."""
    stage = decision.stage.value
    RANGES.labels(stage, _OUTCOME[decision.action]).inc()
    if decision.action in (reactions.Action.SPLIT, reactions.Action.PROMOTE, reactions.Action.QUARANTINE):
        OOM_KILLS.labels(stage).inc()
    if decision.action is reactions.Action.SPLIT:
        SPLITS.labels(stage).inc()
    elif decision.action is reactions.Action.PROMOTE:
        PROMOTIONS.labels(stage).inc()
    elif decision.action is reactions.Action.QUARANTINE:
        QUARANTINED.labels(stage).inc()
    if duration_s is not None:
        RANGE_SECONDS.labels(stage).observe(duration_s)


_phases: dict[str, str] = {}
_series: dict[str, set[tuple[str, str, str, str]]] = {}  # run uid -> its qd_gazettes label sets
_forgotten: set[str] = set()  # deleted runs: a pass still running when the run went must not re-add it
_lock = threading.Lock()  # daemons (one thread per run) and the delete handler share the above


def observe_run(uid: str, namespace: str, name: str, phase: str, gazettes: dict[str, dict[str, int]]) -> None:
    """Record a run's phase (for qd_runs) and its gazette counts by stage and state."""
    with _lock:
        if uid in _forgotten:
            return
        _phases[uid] = phase
        _count_phases()
        series = _series.setdefault(uid, set())
        for stage, states in gazettes.items():
            for state, count in states.items():
                labels = (namespace, name, stage, state)
                GAZETTES.labels(*labels).set(count)
                series.add(labels)


def forget_run(uid: str) -> None:
    """A deleted run leaves the phase counts, and its gazette series go away, for good."""
    with _lock:
        _forgotten.add(uid)
        _phases.pop(uid, None)
        _count_phases()
        for labels in _series.pop(uid, set()):
            GAZETTES.remove(*labels)


def _count_phases() -> None:
    counts = collections.Counter(_phases.values())
    for value in set(counts) | {"Active", "Succeeded", "Degraded", "Failed"}:
        RUNS.labels(value).set(counts.get(value, 0))


def serve(port: int) -> None:
    """Start the /metrics endpoint (a daemon thread); port 0 disables it."""
    if port:
        start_http_server(port)
