"""The operator against a real API server and Job controller (no kubelet: pod outcomes are driven
through the API, the way a kubelet would report them)."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from qd_core import db
from qd_operator import handlers, model, spec
from qd_operator.settings import OperatorSettings
from qd_testkit import seed_gazettes as seed

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def crd(kubectl: Callable[..., Any], wait_for: Callable[..., Any], api_client: Any) -> None:
    kubectl("apply", "--server-side", "-f", str(ROOT / "crds" / "extractionrun.yaml"))
    ext = client.ApiextensionsV1Api(api_client)

    def established() -> bool:
        crd = ext.read_custom_resource_definition(f"{model.PLURAL}.{model.GROUP}")
        return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])

    wait_for(established, 60, "the CRD to be established")


@pytest.fixture()
def operator_factory(crd: None, namespace: str, schema: str) -> Iterator[Callable[[], Any]]:
    """Start the real operator in-process (kopf's KopfRunner), watching the test namespace and schema."""
    from contextlib import contextmanager

    from kopf.testing import KopfRunner

    database = db.DatabaseSettings.from_env()
    handlers._settings = OperatorSettings(
        database=db.DatabaseSettings(database.host, database.port, database.dbname, database.user,
                                     database.password, options=f"-c search_path={schema}"),
        job_service_account="default", default_image=spec.Image("localhost/qd-extractor", "test"),
        reconcile_seconds=0.5, job_ttl_seconds=None, metrics_port=0, namespaces=(namespace,))

    @contextmanager
    def start() -> Iterator[None]:
        args = ["run", "--standalone", "--namespace", namespace, "-m", "qd_operator.handlers"]
        with KopfRunner(args, timeout=60) as runner:
            yield
        assert runner.exit_code == 0, runner.output[-3000:]

    yield start
    handlers._settings = None


@pytest.fixture()
def operator(operator_factory: Callable[[], Any]) -> Iterator[None]:
    with operator_factory():
        yield


def apply_run(api_client: Any, namespace: str, name: str, spec_extra: dict[str, Any]) -> None:
    body = {"apiVersion": f"{model.GROUP}/{model.VERSION}", "kind": model.KIND, "metadata": {"name": name},
            "spec": {"selection": {"mode": "UNPROCESSED"}, "stages": ["extract"], **spec_extra}}
    client.CustomObjectsApi(api_client).create_namespaced_custom_object(model.GROUP, model.VERSION, namespace,
                                                                        model.PLURAL, body)


def get_run(api_client: Any, namespace: str, name: str) -> dict[str, Any]:
    return dict(client.CustomObjectsApi(api_client).get_namespaced_custom_object(
        model.GROUP, model.VERSION, namespace, model.PLURAL, name))


def run_gone(api_client: Any, namespace: str, name: str) -> bool:
    """Whether the run is deleted (the API server answers 404)."""
    try:
        get_run(api_client, namespace, name)
    except client.ApiException as err:
        return err.status == 404
    return False


def condition(run: dict[str, Any], kind: str) -> str | None:
    for c in (run.get("status") or {}).get("conditions") or []:
        if c["type"] == kind:
            return str(c["status"])
    return None


def finish_pod(core: Any, pod: Any, *, exit_code: int, reason: str) -> None:
    """Report a pod's end as the kubelet would: phase and the container's terminated state."""
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    phase = "Succeeded" if exit_code == 0 else "Failed"
    status = {"status": {"phase": phase, "containerStatuses": [{
        "name": model.CONTAINER, "image": "x", "imageID": "", "ready": False, "restartCount": 0,
        "state": {"terminated": {"exitCode": exit_code, "reason": reason, "startedAt": now, "finishedAt": now}}}]}}
    core.patch_namespaced_pod_status(pod.metadata.name, pod.metadata.namespace, status,
                                     _content_type="application/strategic-merge-patch+json")


def drive_pods(core: Any, namespace: str, outcome: Callable[[Any], tuple[int, str]], done: set[str]) -> int:
    """Finish every pod not finished yet; return how many were finished now."""
    finished = 0
    for pod in core.list_namespaced_pod(namespace).items:
        if pod.metadata.name in done or pod.status.phase in ("Succeeded", "Failed"):
            continue
        code, reason = outcome(pod)
        finish_pod(core, pod, exit_code=code, reason=reason)
        done.add(pod.metadata.name)
        finished += 1
    return finished


def completed(pod: Any) -> tuple[int, str]:
    """The outcome of a pod that did its work."""
    return 0, "Completed"


def drive_until(api_client: Any, core: Any, namespace: str, name: str, kind: str, wait_for: Callable[..., Any],
                timeout: float, what: str, outcome: Callable[[Any], tuple[int, str]] = completed,
                done: set[str] | None = None) -> None:
    """Finish the run's pods as they come (by `outcome`) until its condition `kind` is True."""
    finished_pods = set() if done is None else done

    def reached() -> bool:
        drive_pods(core, namespace, outcome, finished_pods)
        return condition(get_run(api_client, namespace, name), kind) == "True"

    wait_for(reached, timeout, what)


def events(core: Any, namespace: str) -> list[str]:
    return [e.reason for e in core.list_namespaced_event(namespace).items]


def test_happy_path_ranges_waves_and_status(operator: None, api_client: Any, core_v1: Any, batch_v1: Any,
                                            namespace: str, conn: Any, wait_for: Callable[..., Any]) -> None:
    seed(conn, 10)
    apply_run(api_client, namespace, "happy", {"ranges": {"gazettesPerRange": 3}, "parallelism": 2})
    drive_until(api_client, core_v1, namespace, "happy", "Succeeded", wait_for, 120, "the run to succeed")
    run = get_run(api_client, namespace, "happy")
    assert run["status"]["ranges"]["total"] == 4 and run["status"]["ranges"]["succeeded"] == 4
    assert run["status"]["progress"] == "100%"
    jobs = batch_v1.list_namespaced_job(namespace).items
    # Deterministic names, owned by the run, memory request = limit, Indexed with per-index backoff.
    assert {j.metadata.name for j in jobs} <= {f"happy-extract-t0-w{i}" for i in range(4)}
    for job in jobs:
        assert job.metadata.owner_references[0].kind == model.KIND
        assert job.spec.completion_mode == "Indexed" and job.spec.backoff_limit_per_index is not None
        assert job.spec.parallelism <= 2
        res = job.spec.template.spec.containers[0].resources
        assert res.requests["memory"] == res.limits["memory"]
        assert job.spec.template.spec.automount_service_account_token is False
    with conn.cursor() as cur:
        cur.execute("SELECT count(*), sum(gazettes) FROM qd_ranges WHERE state = 'succeeded'")
        assert cur.fetchone() == (4, 10)
    assert {"Planned", "JobCreated", "RunSucceeded"} <= set(events(core_v1, namespace))
    assert events(core_v1, namespace).count("Planned") == 1

    # A later run's claims rewrite the gazettes' run id; the finished run's status must not shrink.
    with conn.cursor() as cur:
        cur.execute("UPDATE qd_gazette_state SET run_id = 'a-later-run'")
    from qd_operator import metrics

    uid = run["metadata"]["uid"]
    # Every pass records the run's phase: clear it twice and wait for it to come back. The pass that
    # restores it the second time started after the first came back, so after the UPDATE above.
    for _ in range(2):
        with metrics._lock:
            metrics._phases.pop(uid, None)
        wait_for(lambda: uid in metrics._phases, 30, "another reconcile pass of the finished run")
    after = get_run(api_client, namespace, "happy")["status"]
    assert (after["done"], after["gazettes"], after["progress"]) == (
        run["status"]["done"], run["status"]["gazettes"], "100%")


def test_a_blocker_whose_run_is_gone_is_released(operator: None, api_client: Any, core_v1: Any,
                                                 namespace: str, conn: Any, wait_for: Callable[..., Any]) -> None:
    """An active record left by a run deleted while the database was down must not block forever."""
    ids = seed(conn, 4)
    db.migrate(conn)  # the operator migrates at start-up too; both are idempotent
    ghost = "00000000-0000-4000-8000-00000000dead"
    with conn.cursor() as cur:  # active, with an unfinished range over the same gazettes, and no CR
        cur.execute("INSERT INTO qd_runs (uid, namespace, name, selection, stages) VALUES"
                    " (%s, %s, 'ghost', '{\"mode\": \"UNPROCESSED\"}', '{extract}')", (ghost, namespace))
        cur.execute("INSERT INTO qd_ranges (run_uid, range_id, stage, low, high, gazettes) VALUES"
                    " (%s, 'r0000', 'extract', %s, %s, 4)", (ghost, min(ids), max(ids)))
    apply_run(api_client, namespace, "after-ghost", {})

    def planned() -> bool:
        return condition(get_run(api_client, namespace, "after-ghost"), "Planned") == "True"

    wait_for(planned, 60, "the run to be planned once the ghost blocker is released")
    with conn.cursor() as cur:
        cur.execute("SELECT state, finished_at IS NOT NULL FROM qd_runs WHERE uid = %s", (ghost,))
        assert cur.fetchone() == ("deleted", True)
    assert "StaleRunReleased" in events(core_v1, namespace)


def test_oom_splits_promotes_then_quarantines_one_gazette(operator: None, api_client: Any, core_v1: Any,
                                                           namespace: str, conn: Any,
                                                           wait_for: Callable[..., Any]) -> None:
    ids = seed(conn, 2)
    poison = max(ids)  # ranges run newest first; the poison gazette is the one that OOMs
    apply_run(api_client, namespace, "oom", {"ranges": {"gazettesPerRange": 2}, "parallelism": 1,
                                             "maxSplitDepth": 1,
                                             "memoryTiers": {"extract": ["64Mi", "128Mi"]}})

    def outcome(pod: Any) -> tuple[int, str]:
        ranges = next(e.value for e in pod.spec.containers[0].env if e.name == "QD_RANGES").split(",")
        index = int(pod.metadata.annotations["batch.kubernetes.io/job-completion-index"])
        low, high = (int(x) for x in ranges[index].split(":"))
        return (137, "OOMKilled") if low <= poison <= high else (0, "Completed")

    drive_until(api_client, core_v1, namespace, "oom", "Succeeded", wait_for, 180, "the run to finish", outcome)
    reasons = events(core_v1, namespace)
    assert {"RangeOOMKilled", "RangeSplit", "RangePromoted", "GazetteQuarantined"} <= set(reasons), reasons
    run = get_run(api_client, namespace, "oom")
    assert run["status"]["quarantined"] == [{"gazetteId": poison, "filePath": f"2704302/2024/g{ids.index(poison)}.pdf"}]
    with conn.cursor() as cur:
        cur.execute("SELECT gazette_id, state, error_class, terminal FROM qd_gazette_state")
        assert cur.fetchall() == [(poison, "quarantined", "oom", True)]
        cur.execute("SELECT tier FROM qd_ranges WHERE state = 'quarantined'")
        assert cur.fetchone() == (1,)  # it reached the top tier before being quarantined


def test_invalid_runs_are_rejected_by_the_api_server(crd: None, api_client: Any, namespace: str) -> None:
    api = client.CustomObjectsApi(api_client)
    cases = [
        ({"selection": {"mode": "WEEKLY"}}, "spec.selection.mode"),
        ({"selection": {"mode": "ALL", "dateFrom": "2024-02-01", "dateTo": "2024-01-01"}}, "dateFrom"),
        ({"selection": {"mode": "ALL"}, "memoryTiers": {"extract": ["1Gi", "512Mi"]}}, "increasing"),
        ({"selection": {"mode": "ALL", "territories": ["27043"]}}, "territories"),
        ({"selection": {"mode": "ALL"}, "stages": ["excerpts"]}, "extract"),
        ({"selection": {"mode": "ALL"}, "memoryTiers": {"extract": ["32Mi", "512Mi"]}}, "at least 64Mi"),
        ({"selection": {"mode": "ALL"}, "memoryTiers": {"excerpts": ["1GB"]}}, "spec.memoryTiers.excerpts"),
        ({"selection": {"mode": "ALL"}, "workDirSizeLimit": "lots"}, "spec.workDirSizeLimit"),
        ({"selection": {"mode": "ALL"}, "parallelism": 0}, "spec.parallelism"),
    ]
    for i, (bad, expected) in enumerate(cases):
        body = {"apiVersion": f"{model.GROUP}/{model.VERSION}", "kind": model.KIND,
                "metadata": {"name": f"bad-{i}"}, "spec": bad}
        with pytest.raises(client.ApiException) as err:
            api.create_namespaced_custom_object(model.GROUP, model.VERSION, namespace, model.PLURAL, body)
        assert err.value.status == 422
        assert expected in err.value.body, (bad, err.value.body)


def test_selection_is_immutable(crd: None, api_client: Any, namespace: str) -> None:
    apply_run(api_client, namespace, "fixed", {})
    api = client.CustomObjectsApi(api_client)
    with pytest.raises(client.ApiException) as err:
        api.patch_namespaced_custom_object(model.GROUP, model.VERSION, namespace, model.PLURAL, "fixed",
                                           {"spec": {"selection": {"mode": "ALL"}}})
    assert err.value.status == 422 and "immutable" in err.value.body
    for change, expected in [({"stages": ["extract", "excerpts"]}, "spec.stages is immutable"),
                             ({"ranges": {"gazettesPerRange": 7}}, "spec.ranges is immutable")]:
        with pytest.raises(client.ApiException) as err:
            api.patch_namespaced_custom_object(model.GROUP, model.VERSION, namespace, model.PLURAL, "fixed",
                                               {"spec": change})
        assert err.value.status == 422 and expected in err.value.body


def test_memory_tiers_can_only_grow_at_the_end(crd: None, api_client: Any, namespace: str) -> None:
    """Ranges store their tier as a position, so removing or changing a tier would re-size them."""
    apply_run(api_client, namespace, "tiers", {"memoryTiers": {"extract": ["256Mi", "512Mi"]}})
    api = client.CustomObjectsApi(api_client)

    def patch(tiers: list[str]) -> Any:
        return api.patch_namespaced_custom_object(model.GROUP, model.VERSION, namespace, model.PLURAL, "tiers",
                                                  {"spec": {"memoryTiers": {"extract": tiers}}})

    for bad in (["256Mi"], ["300Mi", "512Mi"], ["256Mi", "1Gi"]):
        with pytest.raises(client.ApiException) as err:
            patch(bad)
        assert err.value.status == 422 and "added at the end" in err.value.body, bad
    assert patch(["256Mi", "512Mi", "2Gi"])["spec"]["memoryTiers"]["extract"] == ["256Mi", "512Mi", "2Gi"]


def test_kubectl_get_shows_progress_columns(crd: None, api_client: Any, namespace: str,
                                            kubectl: Callable[..., Any]) -> None:
    apply_run(api_client, namespace, "columns", {})
    out = kubectl("get", f"{model.PLURAL}.{model.GROUP}", "-n", namespace)
    header = (out.stdout if isinstance(out, subprocess.CompletedProcess) else str(out)).splitlines()[0]
    for column in ("MODE", "PROGRESS", "DONE", "SUCCEEDED", "AGE"):
        assert column in header


def jobs_of(batch: Any, namespace: str) -> list[Any]:
    return list(batch.list_namespaced_job(namespace).items)


def test_suspend_reaches_jobs_and_resume_finishes_without_burning_retries(
        operator: None, api_client: Any, core_v1: Any, batch_v1: Any, namespace: str, conn: Any,
        wait_for: Callable[..., Any]) -> None:
    seed(conn, 4)
    apply_run(api_client, namespace, "pause", {"ranges": {"gazettesPerRange": 2}, "parallelism": 1})
    wait_for(lambda: jobs_of(batch_v1, namespace), 60, "the first Job")
    api = client.CustomObjectsApi(api_client)
    api.patch_namespaced_custom_object(model.GROUP, model.VERSION, namespace, model.PLURAL, "pause",
                                       {"spec": {"suspend": True}})
    wait_for(lambda: all(j.spec.suspend for j in jobs_of(batch_v1, namespace)), 60, "Jobs to be suspended")
    wait_for(lambda: condition(get_run(api_client, namespace, "pause"), "Suspended") == "True", 60,
             "the Suspended condition")
    # The Job controller deletes the pods of a suspended Job; no new wave starts meanwhile.
    wait_for(lambda: not [p for p in core_v1.list_namespaced_pod(namespace).items
                          if not p.metadata.deletion_timestamp], 60, "pods to go away")
    assert len(jobs_of(batch_v1, namespace)) == 1
    api.patch_namespaced_custom_object(model.GROUP, model.VERSION, namespace, model.PLURAL, "pause",
                                       {"spec": {"suspend": False}})
    drive_until(api_client, core_v1, namespace, "pause", "Succeeded", wait_for, 120, "the run to finish after resume")
    for job in jobs_of(batch_v1, namespace):
        assert not job.status.failed  # suspension consumed no retry
    assert {"Suspended", "Resumed"} <= set(events(core_v1, namespace))


def test_operator_restart_mid_run_creates_no_duplicate_job(
        crd: None, api_client: Any, core_v1: Any, batch_v1: Any, namespace: str, conn: Any, schema: str,
        operator_factory: Callable[[], Any], wait_for: Callable[..., Any]) -> None:
    seed(conn, 6)
    with operator_factory():
        apply_run(api_client, namespace, "restart", {"ranges": {"gazettesPerRange": 2}, "parallelism": 1})
        wait_for(lambda: jobs_of(batch_v1, namespace), 60, "the first Job")
    first = {j.metadata.name: j.metadata.uid for j in jobs_of(batch_v1, namespace)}
    with operator_factory():  # a new operator process: same plan, same Job, no twin
        drive_until(api_client, core_v1, namespace, "restart", "Succeeded", wait_for, 120,
                    "the run to finish after the restart")
    after = {j.metadata.name: j.metadata.uid for j in jobs_of(batch_v1, namespace)}
    assert all(after[name] == uid for name, uid in first.items())  # the same objects, not re-created
    assert len(after) == len(set(after))
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM qd_runs")
        assert cur.fetchone() == (1,)


def test_deleting_a_run_removes_its_jobs_and_never_hangs(
        operator: None, api_client: Any, batch_v1: Any, namespace: str, conn: Any,
        wait_for: Callable[..., Any]) -> None:
    seed(conn, 4)
    apply_run(api_client, namespace, "doomed", {"ranges": {"gazettesPerRange": 2}, "parallelism": 2})
    wait_for(lambda: jobs_of(batch_v1, namespace), 60, "a Job")
    api = client.CustomObjectsApi(api_client)
    api.delete_namespaced_custom_object(model.GROUP, model.VERSION, namespace, model.PLURAL, "doomed")
    wait_for(lambda: run_gone(api_client, namespace, "doomed"), 60, "the run to be deleted (no stuck finalizer)")
    wait_for(lambda: not jobs_of(batch_v1, namespace), 60, "its Jobs to be garbage-collected")
    with conn.cursor() as cur:
        cur.execute("SELECT state FROM qd_runs")
        assert cur.fetchone() == ("deleted",)


def test_rerun_failed_ranges_only(
        operator: None, api_client: Any, core_v1: Any, namespace: str, conn: Any,
        wait_for: Callable[..., Any]) -> None:
    seed(conn, 4)
    apply_run(api_client, namespace, "flaky", {"ranges": {"gazettesPerRange": 2}, "parallelism": 2,
                                               "retriesPerRange": 0})
    done: set[str] = set()
    first_range_failing = {"on": True}

    def outcome(pod: Any) -> tuple[int, str]:
        index = int(pod.metadata.annotations["batch.kubernetes.io/job-completion-index"])
        if index == 0 and first_range_failing["on"]:
            return 3, "Error"  # a service was unavailable: a normal failure, no OOM
        return 0, "Completed"

    drive_until(api_client, core_v1, namespace, "flaky", "Degraded", wait_for, 120, "the run to end Degraded",
                outcome, done)
    run = get_run(api_client, namespace, "flaky")
    assert run["status"]["ranges"]["failed"] == 1 and run["status"]["failedRanges"][0]["reason"]
    first_range_failing["on"] = False
    api = client.CustomObjectsApi(api_client)
    api.patch_namespaced_custom_object(model.GROUP, model.VERSION, namespace, model.PLURAL, "flaky",
                                       {"metadata": {"annotations": {model.ANNOTATION_RERUN: "1"}}})

    drive_until(api_client, core_v1, namespace, "flaky", "Succeeded", wait_for, 120,
                "the rerun of the failed range to succeed", outcome, done)
    assert condition(get_run(api_client, namespace, "flaky"), "Degraded") == "False"
    assert "RerunFailedRanges" in events(core_v1, namespace)
    with conn.cursor() as cur:
        cur.execute("SELECT state, count(*) FROM qd_ranges GROUP BY state")
        assert dict(cur.fetchall()) == {"succeeded": 2}


def test_ttl_after_finished_deletes_the_run(operator: None, api_client: Any, core_v1: Any, namespace: str,
                                            conn: Any, wait_for: Callable[..., Any]) -> None:
    seed(conn, 2)
    apply_run(api_client, namespace, "shortlived", {"ranges": {"gazettesPerRange": 2},
                                                    "ttlSecondsAfterFinished": 2})
    done: set[str] = set()

    def deleted() -> bool:
        drive_pods(core_v1, namespace, completed, done)
        return run_gone(api_client, namespace, "shortlived")

    wait_for(deleted, 120, "ttlSecondsAfterFinished to delete the finished run")
    assert "RunSucceeded" in events(core_v1, namespace)


def test_metrics_count_jobs_and_ranges(operator: None, api_client: Any, core_v1: Any, namespace: str, conn: Any,
                                       wait_for: Callable[..., Any]) -> None:
    import re
    import socket
    import urllib.request

    from qd_operator import metrics

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    metrics.serve(port)  # what the operator does at start-up with QD_METRICS_PORT

    def value(name: str, **labels: str) -> float:
        text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
        selector = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))  # exposition sorts labels
        match = re.search(rf"^{name}\{{{selector}\}} (\S+)$", text, re.M)
        return float(match.group(1)) if match else 0.0

    jobs_before = value("qd_jobs_created_total", stage="extract")
    ranges_before = value("qd_ranges_total", stage="extract", outcome="succeeded")
    seed(conn, 4)
    apply_run(api_client, namespace, "metered", {"ranges": {"gazettesPerRange": 2}, "parallelism": 2})
    drive_until(api_client, core_v1, namespace, "metered", "Succeeded", wait_for, 120, "the run to finish")
    assert value("qd_jobs_created_total", stage="extract") >= jobs_before + 1
    assert value("qd_ranges_total", stage="extract", outcome="succeeded") == ranges_before + 2
    assert value("qd_range_duration_seconds_count", stage="extract") >= 2
    assert value("qd_runs", phase="Succeeded") >= 1
