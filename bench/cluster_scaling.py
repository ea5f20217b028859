"""End-to-end scaling on the local one-node cluster: gazettes per minute at parallelism 1, 2 and 4,
and the peak memory of every Job pod read from its cgroup, against the pod's limit.

Needs what `hack/demo.sh` leaves running: the services, the cluster (`KUBECONFIG`), the images and
the chart installed in `--namespace` with its `qd-services` ConfigMap and `qd-credentials` Secret.
The operator plans from its own database (the ConfigMap's POSTGRES_DB, `qd_demo` for the demo);
this script seeds `--gazettes` mixed fixtures there on dates of its own (year 2001, which no other
seed uses) and selects exactly those. Before each parallelism it resets those gazettes to
unprocessed and removes their rows from our state table, so every run does the same work.

Usage (after `hack/demo.sh`, with `eval "$(hack/services.sh env)"` and
`eval "$(hack/cluster/controlplane.sh env)"`):
    python bench/cluster_scaling.py [--gazettes 500] [--parallelism 1,2,4] [--per-range 25]

Exit status 0 when every run succeeded with every gazette accounted for; the scaling itself has no
pass/fail target (the issue asks for the curve).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from kubernetes import client, config

from qd_devtools import fixtures, loader
from qd_operator import model

BENCH_YEAR = 2001
POLL_S = 0.2  # cgroup sampling period; the pod-level cgroup outlives its container, so the
# last read after the container exits still holds the final peak.


@dataclasses.dataclass
class PodMemory:
    uid: str
    limit: int = 0
    peak_usage: int = 0  # v1 memory.max_usage_in_bytes / v2 memory.peak (anon + page cache)
    peak_rss: int = 0  # largest sampled anonymous memory (v1 total_rss / v2 anon)
    name: str = ""
    stage: str = ""
    tier: str = ""
    reason: str = ""


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _stat(path: Path, key: str) -> int:
    try:
        for line in (path / "memory.stat").read_text().splitlines():
            k, _, v = line.partition(" ")
            if k == key:
                return int(v)
    except OSError:
        pass
    return 0


class CgroupSampler:
    """Polls every pod cgroup under the kubelet's cgroup root for its memory peak."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.v2 = (Path("/sys/fs/cgroup") / "cgroup.controllers").exists()
        self.pods: dict[str, PodMemory] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _pod_dirs(self) -> list[Path]:
        return [p for pattern in ("pod*", "*/pod*") for p in self.root.glob(pattern) if p.is_dir()]

    def poll(self) -> None:
        for d in self._pod_dirs():
            uid = d.name[3:].replace("_", "-")
            if self.v2:
                peak, limit, rss = _read_int(d / "memory.peak"), _read_int(d / "memory.max"), _stat(d, "anon")
            else:
                peak = _read_int(d / "memory.max_usage_in_bytes")
                limit, rss = _read_int(d / "memory.limit_in_bytes"), _stat(d, "total_rss")
            if peak is None:
                continue  # removed between glob and read
            pod = self.pods.setdefault(uid, PodMemory(uid))
            pod.peak_usage = max(pod.peak_usage, peak)
            pod.peak_rss = max(pod.peak_rss, rss)
            pod.limit = limit or pod.limit

    def _run(self) -> None:
        while not self._stop.wait(POLL_S):
            self.poll()

    def __enter__(self) -> CgroupSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def kubelet_cgroup_root() -> Path:
    base = Path("/sys/fs/cgroup")
    for candidate in (base / "memory" / "qd-kubelet" / "kubepods", base / "qd-kubelet" / "kubepods",
                      base / "memory" / "kubepods", base / "kubepods"):
        if candidate.is_dir():
            return candidate
    raise SystemExit("no kubelet pod cgroups found under /sys/fs/cgroup: is the local node up (hack/demo.sh)?")


def seed(conn: Any, s3: Any, bucket: str, n: int) -> list[int]:
    """Mixed fixtures dated in BENCH_YEAR, enough that `n` of them are selectable (upstream's
    selection skips `.zip` keys, one kind in fifteen); returns the selectable gazettes' ids."""
    start = dt.date(BENCH_YEAR, 1, 1)
    kinds = len(fixtures.KINDS)
    total = -(-n * kinds // (kinds - 1))
    batch = (dataclasses.replace(fx, date=start + dt.timedelta(days=i % 365))
             for i, fx in enumerate(fixtures.mixed_batch(total, seed=BENCH_YEAR)))
    return [g.id for g in loader.load_gazettes(conn, s3, bucket, batch) if not g.file_path.endswith(".zip")]


def reset(conn: Any, ids: list[int]) -> None:
    with conn.cursor() as cur:
        cur.execute("DELETE FROM qd_gazette_state WHERE gazette_id = ANY(%s)", (ids,))
        cur.execute("UPDATE gazettes SET processed = FALSE WHERE id = ANY(%s)", (ids,))


def run_spec(args: argparse.Namespace, parallelism: int, image: dict[str, Any]) -> dict[str, Any]:
    return {
        "selection": {"mode": "UNPROCESSED", "dateFrom": f"{BENCH_YEAR}-01-01", "dateTo": f"{BENCH_YEAR}-12-31"},
        "stages": ["extract"], "ranges": {"gazettesPerRange": args.per_range}, "parallelism": parallelism,
        "memoryTiers": {"extract": args.tiers.split(",")}, "image": image,
        "serviceRefs": {"configMapName": args.configmap, "secretName": args.secret},
    }


def condition(run: dict[str, Any], kind: str) -> str | None:
    return next((c["status"] for c in (run.get("status") or {}).get("conditions") or [] if c["type"] == kind), None)


def measure(args: argparse.Namespace, api: Any, parallelism: int, image: dict[str, Any],
            root: Path) -> dict[str, Any]:
    custom, core = client.CustomObjectsApi(api), client.CoreV1Api(api)
    name = f"bench-scaling-p{parallelism}-{int(time.time())}"
    body = {"apiVersion": f"{model.GROUP}/{model.VERSION}", "kind": model.KIND, "metadata": {"name": name},
            "spec": run_spec(args, parallelism, image)}
    pod_meta: dict[str, client.V1Pod] = {}
    with CgroupSampler(root) as sampler:
        t0 = time.monotonic()
        custom.create_namespaced_custom_object(model.GROUP, model.VERSION, args.namespace, model.PLURAL, body)
        deadline, last, run = t0 + args.timeout, "", {}
        while True:
            run = custom.get_namespaced_custom_object(model.GROUP, model.VERSION, args.namespace, model.PLURAL, name)
            if condition(run, "Succeeded") == "True" or condition(run, "Failed") == "True":
                break
            for pod in core.list_namespaced_pod(args.namespace, label_selector=f"{model.LABEL_RUN}={name}").items:
                pod_meta[pod.metadata.uid] = pod
            status = run.get("status") or {}
            line = f"  p={parallelism} {status.get('progress', '?')} {status.get('gazettes', '')}"
            if line != last:
                print(line, flush=True)
                last = line
            if time.monotonic() > deadline:
                raise SystemExit(f"{name} did not finish in {args.timeout} s: "
                                 f"kubectl -n {args.namespace} describe xrun {name}")
            time.sleep(1.0)  # polling interval of the wait above, not synchronisation
        wall = time.monotonic() - t0
        for pod in core.list_namespaced_pod(args.namespace, label_selector=f"{model.LABEL_RUN}={name}").items:
            pod_meta[pod.metadata.uid] = pod
        sampler.poll()
    pods = []
    for uid, pod in pod_meta.items():
        mem = sampler.pods.get(uid, PodMemory(uid))
        labels = pod.metadata.labels or {}
        mem.name = pod.metadata.name
        mem.stage, mem.tier = labels.get(model.LABEL_STAGE, ""), labels.get(model.LABEL_TIER, "")
        st = (pod.status.container_statuses or [None])[0]
        term = st and st.state and st.state.terminated
        mem.reason = term.reason if term else (pod.status.phase or "")
        limit = (pod.spec.containers[0].resources.limits or {}).get("memory", "")
        seconds = (term.finished_at - term.started_at).total_seconds() if term else None
        pods.append({**dataclasses.asdict(mem), "limit_spec": limit, "container_s": seconds})
    gz = (run.get("status") or {}).get("gazettes") or {}
    if not args.keep:
        custom.delete_namespaced_custom_object(model.GROUP, model.VERSION, args.namespace, model.PLURAL, name)
    return {"name": name, "parallelism": parallelism, "wall_s": round(wall, 1), "gazettes": gz,
            "succeeded_condition": condition(run, "Succeeded"),
            "gazettes_per_min": round(60 * gz.get("total", 0) / wall, 1), "pods": pods}


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    ps = [r["parallelism"] for r in results]
    rates = [r["gazettes_per_min"] for r in results]
    ax1.plot(ps, rates, "o-", label="measured")
    ax1.plot(ps, [rates[0] * p / ps[0] for p in ps], "--", color="grey", label="linear from p=1")
    ax1.set(xlabel="parallelism (pods at once)", ylabel="gazettes / minute", xticks=ps,
            title="End-to-end extract throughput")
    ax1.legend()
    for i, r in enumerate(results):
        peaks = sorted(p["peak_usage"] / 2**20 for p in r["pods"] if p["peak_usage"])
        ax2.scatter([i + 1] * len(peaks), peaks, s=12, alpha=0.6, label=f"p={r['parallelism']}")
        limits = {p["limit"] / 2**20 for p in r["pods"] if p["limit"] and p["limit"] < 2**40}
        for lim in limits:
            ax2.axhline(lim, color="red", linewidth=0.8, linestyle=":")
    ax2.set(xlabel="run", ylabel="pod cgroup peak (MiB)", xticks=range(1, len(results) + 1),
            xticklabels=[f"p={r['parallelism']}" for r in results], title="Per-pod peak memory vs limit (red)")
    ax2.set_ylim(bottom=0)
    common.save_figure(fig, path)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--gazettes", type=int, default=500)
    ap.add_argument("--parallelism", default="1,2,4", help="comma-separated pod counts")
    ap.add_argument("--per-range", type=int, default=25, help="gazettes per range (same for every run)")
    ap.add_argument("--tiers", default="256Mi,512Mi", help="extract memory tiers")
    ap.add_argument("--namespace", default="qd-demo")
    ap.add_argument("--configmap", default="qd-services")
    ap.add_argument("--secret", default="qd-credentials")
    ap.add_argument("--image", default="localhost/qd-extractor:0.1.0")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per run")
    ap.add_argument("--keep", action="store_true", help="leave the ExtractionRuns in place")
    ap.add_argument("--no-plot", action="store_true")
    ap.add_argument("--plot", type=Path, help="where the PNG goes (default docs/img/cluster_scaling.png)",
                    default=Path(__file__).resolve().parents[1] / "docs" / "img" / "cluster_scaling.png")
    args = ap.parse_args()
    common.require_services()
    config.load_kube_config()
    api = client.ApiClient()
    cm = client.CoreV1Api(api).read_namespaced_config_map(args.configmap, args.namespace).data
    repo, _, tag = args.image.rpartition(":")
    image = {"repository": repo, "tag": tag, "pullPolicy": "Never"}
    root = kubelet_cgroup_root()
    os.environ["POSTGRES_DB"] = cm["POSTGRES_DB"]  # the operator's database, not the services' default
    conn = common.pg_connect()
    ids = seed(conn, common.s3_client(), cm["STORAGE_BUCKET"], args.gazettes)
    print(f"{len(ids)} bench gazettes in {cm['POSTGRES_DB']} (year {BENCH_YEAR}); cgroups under {root}", flush=True)
    info = common.machine_info()
    results = []
    for p in (int(x) for x in args.parallelism.split(",")):
        reset(conn, ids)
        r = measure(args, api, p, image, root)
        peaks = [x["peak_usage"] for x in r["pods"] if x["peak_usage"]]
        busy = sum(x["container_s"] or 0 for x in r["pods"])
        print(f"p={p}: {r['gazettes'].get('total')} gazettes in {r['wall_s']} s = {r['gazettes_per_min']}/min; "
              f"{len(r['pods'])} pods ({busy:.0f} container-seconds), peak {max(peaks, default=0) / 2**20:.0f} MiB",
              flush=True)
        results.append(r)
    ok = all(r["succeeded_condition"] == "True" and r["gazettes"].get("total") == len(ids)
             and r["gazettes"].get("pending") == 0 for r in results)
    path = common.write_result("cluster_scaling", {"machine": info, "args": vars(args), "gazette_ids": len(ids),
                                                    "loadavg_at_end": list(os.getloadavg()),
                                                    "runs": results})
    print(f"result: {path}")
    if not args.no_plot:
        plot(results, args.plot)
        print(f"plot: {args.plot}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
