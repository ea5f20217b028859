"""Operator metrics: run phases and per-run gazette series follow runs in and out."""

from __future__ import annotations

from prometheus_client import REGISTRY

from qd_operator import metrics


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def test_runs_are_counted_by_phase_and_forgotten() -> None:
    metrics.observe_run("uid-a", "ns1", "same-name", "Active", {"extract": {"succeeded": 3, "pending": 2}})
    metrics.observe_run("uid-b", "ns2", "same-name", "Succeeded", {"extract": {"succeeded": 7}})
    assert sample("qd_runs", phase="Active") == 1 and sample("qd_runs", phase="Succeeded") == 1
    # Same run name in two namespaces: two series, not one overwriting the other.
    assert sample("qd_gazettes", namespace="ns1", run="same-name", stage="extract", state="succeeded") == 3
    assert sample("qd_gazettes", namespace="ns2", run="same-name", stage="extract", state="succeeded") == 7

    metrics.forget_run("uid-a")
    assert sample("qd_runs", phase="Active") == 0 and sample("qd_runs", phase="Succeeded") == 1
    assert sample("qd_gazettes", namespace="ns1", run="same-name", stage="extract", state="pending") is None
    assert sample("qd_gazettes", namespace="ns2", run="same-name", stage="extract", state="succeeded") == 7
    metrics.forget_run("uid-b")
    assert sample("qd_runs", phase="Succeeded") == 0


def test_a_pass_that_ends_after_the_delete_does_not_bring_the_run_back() -> None:
    metrics.forget_run("uid-c")
    metrics.observe_run("uid-c", "ns", "gone", "Active", {"extract": {"pending": 1}})
    assert sample("qd_gazettes", namespace="ns", run="gone", stage="extract", state="pending") is None
    assert "uid-c" not in metrics._phases

