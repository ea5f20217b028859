"""ExtractionRuns end to end on a real node: real pods, real memory limits, real OOM kills."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import time
from pathlib import Path

import requests
from e2e_helpers import ROOT, Cluster, env, wait_for

from qd_devtools import fixtures as fx

HACK = ROOT / "hack"
MIB = 1024 * 1024


def territory_batch(fixtures: list[fx.Fixture], territory: str) -> list[fx.Fixture]:
    """Move fixtures to one territory, so each scenario's selection is disjoint from the others'."""
    return [dataclasses.replace(f, territory_id=territory) for f in fixtures]


def gazette_states(e2e: Cluster, ids: list[int], stage: str = "extract") -> dict[int, tuple[str, str | None]]:
    rows = e2e.sql("SELECT gazette_id, state, error_class FROM qd_gazette_state WHERE stage = %s"
                   " AND gazette_id = ANY(%s)", (stage, ids))
    return {r[0]: (r[1], r[2]) for r in rows}


def test_happy_path_both_stages(e2e: Cluster) -> None:
    good = [fx.text_pdf, fx.docx, fx.odt, fx.doc, fx.txt_utf8, fx.txt_latin1]
    batch = territory_batch([good[i % len(good)](seed=1000 + i) for i in range(200)], "2700300")
    batch += territory_batch([fx.html_as_pdf(seed=7), fx.corrupt_pdf(seed=7)], "2700300")
    loaded = e2e.load(batch)
    e2e.apply_run("happy", {"selection": {"mode": "UNPROCESSED", "territories": ["2700300"]},
                            "stages": ["extract", "excerpts"], "ranges": {"gazettesPerRange": 30},
                            "parallelism": 4, "memoryTiers": {"extract": ["256Mi", "512Mi"],
                                                              "excerpts": ["1Gi", "2Gi"]}})
    wait_for(lambda: e2e.finished("happy"), 1200, "the happy-path run to finish")
    assert e2e.condition("happy", "Succeeded") == "True"
    run = e2e.run("happy") or {}
    assert run["status"]["ranges"]["total"] >= 2 * 7  # 7 extract ranges, then their excerpts ranges
    ids = [g.id for g in loaded]
    states = gazette_states(e2e, ids)
    good_ids = [g.id for g in loaded if g.kind not in ("html_as_pdf", "corrupt_pdf")]
    assert all(states[i][0] == "succeeded" for i in good_ids)
    assert {states[g.id] for g in loaded if g.kind in ("html_as_pdf", "corrupt_pdf")} == {
        ("failed", "unsupported_type"), ("failed", "corrupt")}
    processed = dict(e2e.sql("SELECT id, processed FROM gazettes WHERE id = ANY(%s)", (ids,)))
    assert all(processed[i] for i in good_ids)
    for g in loaded[:20]:
        if g.id in good_ids:
            key = str(Path(g.file_path).with_suffix(".txt"))
            assert e2e.s3.head_object(Bucket=e2e.bucket, Key=key)["ContentLength"] > 0
            assert e2e.doc(g.file_checksum) is not None
    excerpts = gazette_states(e2e, good_ids, "excerpts")
    assert all(excerpts[i][0] == "succeeded" for i in good_ids)
    hits = requests.post(f"{env('OPENSEARCH_HOST')}/ambiental/_search", timeout=30, json={
        "query": {"terms": {"source_territory_id": ["2700300"]}}, "size": 5}).json()["hits"]
    assert hits["total"]["value"] > 0, "the procurement laws in the fixtures must yield ambiental excerpts"
    assert all(h["_source"]["excerpt_embedding_score"] > 0 for h in hits["hits"])
    # The pods ran under their limits: memory request = limit, from the tier.
    for pod in e2e.pods(**{"queridodiario.ok.org.br/run": "happy"}):
        res = pod.spec.containers[0].resources
        assert res.requests["memory"] == res.limits["memory"]


def big_text_fixture(tmp: Path, size_mb: int) -> fx.Fixture:
    """A plain-text gazette of `size_mb` MiB: harmless within its budget, fatal beyond it."""
    path = tmp / "big.txt"
    # No commas: libmagic would call a file of identical comma-separated lines text/csv.
    line = "Município de Arapiraca — publicação oficial de atos e licitações do dia. " * 4 + "\n"
    with path.open("w", encoding="utf-8") as out:
        while out.tell() < size_mb * MIB:
            out.write(line * 200)
    return fx.Fixture(kind="big_txt", extension="txt", mime="text/plain", phrase="Arapiraca",
                      territory_id="2704302", date=dt.date(2024, 3, 3), seed=0, path=path)


def test_oom_gazette_is_split_promoted_and_quarantined_for_real(e2e: Cluster, tmp_path: Path) -> None:
    small = territory_batch([fx.text_pdf(seed=2000 + i) for i in range(9)], "2704302")
    poison = big_text_fixture(tmp_path, 96)
    loaded = e2e.load([*small, poison])
    poison_id = next(g.id for g in loaded if g.kind == "big_txt")
    # The budget is told 1 GiB while the tiers are 128/144 MiB: 16 MiB of the 96 MiB text is read
    # and encoded in memory (~5 copies, buffers sized for 1 GiB) on top of an ~85 MiB interpreter, and
    # the kernel kills the pod — for that gazette only; the small ones fit easily.
    e2e.sql("UPDATE gazettes SET territory_id = '2704302' WHERE id = %s", (poison_id,))
    services = e2e.core.read_namespaced_config_map("qd-services", e2e.namespace).data
    e2e.core.create_namespaced_config_map(e2e.namespace, {"metadata": {"name": "qd-services-oom"}, "data": {
        **services, "QD_MEMORY_BUDGET_BYTES": str(1024 * MIB)}})
    e2e.apply_run("oom", {"selection": {"mode": "UNPROCESSED", "territories": ["2704302"]},
                          "stages": ["extract"], "ranges": {"gazettesPerRange": 10}, "parallelism": 2,
                          "maxSplitDepth": 2, "memoryTiers": {"extract": ["128Mi", "144Mi"]},
                          "serviceRefs": {"configMapName": "qd-services-oom", "secretName": "qd-credentials"}})
    wait_for(lambda: e2e.finished("oom"), 900, "the OOM run to finish")
    reasons = e2e.events()
    assert {"RangeOOMKilled", "RangeSplit", "RangePromoted", "GazetteQuarantined"} <= set(reasons), (
        "poison:", gazette_states(e2e, [poison_id]), e2e.sql(
            "SELECT source_bytes, text_bytes, documents FROM qd_gazette_state WHERE gazette_id = %s", (poison_id,)),
        e2e.sql("SELECT truncated, text_bytes FROM qd_gazette_documents WHERE gazette_id = %s", (poison_id,)))
    killed = [p for p in e2e.pods(**{"queridodiario.ok.org.br/run": "oom"})
              if any((s.state.terminated and s.state.terminated.reason == "OOMKilled")
                     for s in p.status.container_statuses or [])]
    assert killed, "a pod must show OOMKilled"
    states = gazette_states(e2e, [g.id for g in loaded])
    assert states[poison_id] == ("quarantined", "oom")
    assert all(states[g.id][0] == "succeeded" for g in loaded if g.id != poison_id)
    run = e2e.run("oom") or {}
    assert [q["gazetteId"] for q in run["status"]["quarantined"]] == [poison_id]


def test_suspend_then_resume_loses_nothing_and_burns_no_retry(e2e: Cluster) -> None:
    batch = territory_batch([fx.text_pdf(seed=3000 + i) for i in range(40)], "2705507")
    loaded = e2e.load(batch)
    e2e.apply_run("pause", {"selection": {"mode": "UNPROCESSED", "territories": ["2705507"]},
                            "stages": ["extract"], "ranges": {"gazettesPerRange": 10}, "parallelism": 1})
    ids = [g.id for g in loaded]
    wait_for(lambda: any(s == "succeeded" for s, _ in gazette_states(e2e, ids).values()), 300,
             "the first gazettes to be processed")
    e2e.custom.patch_namespaced_custom_object("queridodiario.ok.org.br", "v1alpha1", e2e.namespace,
                                              "extractionruns", "pause", {"spec": {"suspend": True}})
    wait_for(lambda: e2e.condition("pause", "Suspended") == "True", 120, "the run to be suspended")
    wait_for(lambda: not [p for p in e2e.pods(**{"queridodiario.ok.org.br/run": "pause"})
                          if p.status.phase in ("Pending", "Running")], 120, "its pods to stop")
    e2e.custom.patch_namespaced_custom_object("queridodiario.ok.org.br", "v1alpha1", e2e.namespace,
                                              "extractionruns", "pause", {"spec": {"suspend": False}})
    wait_for(lambda: e2e.finished("pause"), 900, "the resumed run to finish")
    assert e2e.condition("pause", "Succeeded") == "True"
    states = gazette_states(e2e, ids)
    assert all(states[i][0] == "succeeded" for i in ids)
    attempts = e2e.sql("SELECT max(attempts) FROM qd_gazette_state WHERE gazette_id = ANY(%s)", (ids,))
    assert attempts == [(1,)]  # the interrupted gazette went back to pending without burning an attempt
    assert all(not (j.status.failed or 0) for j in e2e.jobs() if j.metadata.labels.get(
        "queridodiario.ok.org.br/run") == "pause")


def test_operator_pod_deleted_mid_run(e2e: Cluster) -> None:
    batch = territory_batch([fx.text_pdf(seed=4000 + i) for i in range(30)], "2706109")
    loaded = e2e.load(batch)
    e2e.apply_run("restart", {"selection": {"mode": "UNPROCESSED", "territories": ["2706109"]},
                              "stages": ["extract"], "ranges": {"gazettesPerRange": 5}, "parallelism": 1})
    wait_for(lambda: [j for j in e2e.jobs() if j.metadata.labels.get("queridodiario.ok.org.br/run") == "restart"],
             120, "the first Job")
    for pod in e2e.pods(**{"app.kubernetes.io/component": "operator"}):
        e2e.core.delete_namespaced_pod(pod.metadata.name, e2e.namespace)
    wait_for(lambda: e2e.finished("restart"), 900, "the run to finish after the operator restart")
    names = {j.metadata.name for j in e2e.jobs() if j.metadata.labels.get("queridodiario.ok.org.br/run") == "restart"}
    # One Job per wave the plan recorded, and no other: the new operator adopted, not re-created.
    waves = e2e.sql("SELECT DISTINCT r.job_name FROM qd_ranges r JOIN qd_runs u ON u.uid = r.run_uid"
                    " WHERE u.name = 'restart'")
    assert names == {w[0] for w in waves}
    assert all(s[0] == "succeeded" for s in gazette_states(e2e, [g.id for g in loaded]).values())


def test_deleting_a_run_mid_way_removes_its_jobs_and_pods(e2e: Cluster) -> None:
    batch = territory_batch([fx.text_pdf(seed=5000 + i) for i in range(30)], "2701407")
    e2e.load(batch)
    e2e.apply_run("doomed", {"selection": {"mode": "UNPROCESSED", "territories": ["2701407"]},
                             "stages": ["extract"], "ranges": {"gazettesPerRange": 5}, "parallelism": 2})
    wait_for(lambda: e2e.pods(**{"queridodiario.ok.org.br/run": "doomed"}), 120, "its pods")
    e2e.custom.delete_namespaced_custom_object("queridodiario.ok.org.br", "v1alpha1", e2e.namespace,
                                               "extractionruns", "doomed")
    wait_for(lambda: e2e.run("doomed") is None, 120, "the run to be gone (no stuck finalizer)")
    wait_for(lambda: not [j for j in e2e.jobs() if j.metadata.labels.get("queridodiario.ok.org.br/run") == "doomed"],
             120, "its Jobs to be gone")
    wait_for(lambda: not e2e.pods(**{"queridodiario.ok.org.br/run": "doomed"}), 120, "its pods to be gone")


def test_tika_down_for_30_seconds_mid_run(e2e: Cluster) -> None:
    batch = territory_batch([fx.text_pdf(seed=6000 + i) for i in range(60)], "2702504")
    loaded = e2e.load(batch)
    ids = [g.id for g in loaded]
    e2e.apply_run("tika", {"selection": {"mode": "UNPROCESSED", "territories": ["2702504"]},
                           "stages": ["extract"], "ranges": {"gazettesPerRange": 20}, "parallelism": 2})
    wait_for(lambda: any(s == "succeeded" for s, _ in gazette_states(e2e, ids).values()), 300,
             "the first gazettes to be processed")
    subprocess.run(["bash", str(HACK / "services" / "tika.sh"), "stop"], check=True, capture_output=True)
    try:
        time.sleep(30)  # the fault itself lasts 30 s; nothing waits on it as synchronisation
    finally:
        subprocess.run(["bash", str(HACK / "services" / "tika.sh"), "start"], check=True, capture_output=True)
    wait_for(lambda: e2e.finished("tika"), 900, "the run to finish after the outage")
    assert e2e.condition("tika", "Succeeded") == "True"
    states = gazette_states(e2e, ids)
    assert all(states[i] == ("succeeded", None) for i in ids), {k: v for k, v in states.items() if v[0] != "succeeded"}


def test_invalid_runs_are_rejected_with_their_messages(e2e: Cluster) -> None:
    kubectl = [env("QD_KUBECTL"), "--kubeconfig", env("KUBECONFIG"), "-n", e2e.namespace, "apply", "-f", "-"]
    bad = {
        "mode: WEEKLY": "Unsupported value: \"WEEKLY\"",
        "mode: ALL\n    dateFrom: \"2024-02-01\"\n    dateTo: \"2024-01-01\"": "dateFrom",
    }
    for selection, message in bad.items():
        manifest = ("apiVersion: queridodiario.ok.org.br/v1alpha1\nkind: ExtractionRun\nmetadata: {name: bad}\n"
                    f"spec:\n  selection:\n    {selection}\n")
        result = subprocess.run(kubectl, input=manifest, capture_output=True, text=True, check=False)
        assert result.returncode != 0 and message in result.stderr, result.stderr
