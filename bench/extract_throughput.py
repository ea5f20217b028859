"""Extract-stage wall time for N small gazettes vs a Tika-only baseline over the same files.

Target (issue): the extractor takes ≤ 1.2 × the time of a loop that only sends the same files to Tika.

The files are N small gazettes from `qd_devtools.fixtures` (by default 80 % text PDFs of 3 pages,
10 % DOCX, 10 % ODT), loaded into a throw-away schema and the bucket. Then, against one Tika:

1. warm-up: --extract-warmup further gazettes (not timed, not counted) go through the extractor
   first, so OpenSearch, MinIO and PostgreSQL are warm as long-running services are in production;
   then the first --warmup files are sent to Tika and the answers dropped (JIT, parser init);
2. baseline: a loop doing `PUT /tika` (Content-Type = the file's libmagic type, Accept: text/plain)
   for every file, sequentially, from local files over one keep-alive session, streaming the response
   and discarding it;
3. extractor: `python -m qd_extractor extract --range LOW:HIGH` (S3 download, libmagic, Tika,
   S3 upload of the .txt, state rows, bulk indexing);
4. baseline again, to bracket drift; the reference is the mean of the two baselines.

By default the benchmark starts its own Tika (heap 512m, like `hack/services.sh`; port 39998) and its own
OpenSearch (heap 512m; port 9271) so other users of the shared test services neither disturb the
comparison nor are disturbed; --service-tika / --service-opensearch use APACHE_TIKA_SERVER / OPENSEARCH_HOST.
The extractor's `gazette_outcome` timings (download/text/upload/prepare) and `opensearch_operation`
durations give the profile of where the extra time goes; --cprofile adds a second, profiled extractor
run (after resetting the state) and prints the top functions (every thread's, merged by `profile_threads.py`).

Usage (with the services' environment, `eval "$(hack/services.sh env)"`):
    python bench/extract_throughput.py [--n 1000] [--warmup N] [--extract-warmup 200] [--cprofile]

Writes bench/results/extract_throughput-<UTC stamp>.json and (unless --no-plot) docs/img/extract_throughput.png.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import pstats
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as bc

TARGET_RATIO = 1.2


def make_fixtures(n: int, seed: int, mix: str) -> list[Any]:
    from qd_devtools import fixtures as fx

    kinds = {"pdf": [fx.text_pdf], "mixed": [fx.text_pdf] * 8 + [fx.docx, fx.odt]}[mix]
    return [kinds[i % len(kinds)](seed + i) for i in range(n)]


def tika_loop(url: str, files: Sequence[tuple[Path, str]], chunk: int = 64 * 1024) -> tuple[float, list[float], int]:
    """PUT every file to Tika in turn; return (total seconds, per-file seconds, text bytes received)."""
    session = requests.Session()
    per_file: list[float] = []
    received = 0
    started = time.perf_counter()
    for path, mime in files:
        t = time.perf_counter()
        with path.open("rb") as body:
            resp = session.put(f"{url}/tika", data=body, stream=True, timeout=(30, 300),
                               headers={"Content-Type": mime, "Accept": "text/plain"})
            with resp:
                resp.raise_for_status()
                for block in resp.iter_content(chunk):
                    received += len(block)
        per_file.append(time.perf_counter() - t)
    total = time.perf_counter() - started
    session.close()
    return total, per_file, received


@contextlib.contextmanager
def tika_for(args: argparse.Namespace, work: Path) -> Iterator[tuple[str, int | None]]:
    if args.service_tika:
        yield os.environ["APACHE_TIKA_SERVER"].rstrip("/"), None
        return
    with bc.TikaServer(args.tika_port, args.tika_heap, work / "tika.log") as tika:
        yield tika.url, tika.pid


def ts(event: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(event["timestamp"]).timestamp()


def profile(events: list[dict[str, Any]], started_epoch: float, wall_s: float) -> dict[str, Any]:
    """Where the extractor's time went, from its own log events."""
    def by(kind: str) -> list[dict[str, Any]]:
        return [e for e in events if e.get("event_type") == kind]

    outcomes = [e for e in by("gazette_outcome") if e.get("state") == "succeeded"]
    startup, tika_req, summary = by("startup"), by("tika_request"), by("range_summary")
    bulks = [e for e in by("opensearch_operation") if e.get("operation") == "bulk"]
    sums: dict[str, float] = {}
    for e in outcomes:
        for k, v in (e.get("timings_ms") or {}).items():
            sums[k] = sums.get(k, 0.0) + float(v)
    out: dict[str, Any] = {"gazettes_succeeded": len(outcomes), "failed": len(by("gazette_outcome")) - len(outcomes),
                           "bulk_requests": len(bulks), "sum_ms": {k: round(v) for k, v in sums.items()}}
    out["sum_ms"]["tika_http"] = round(sum(float(e.get("duration_ms", 0)) for e in by("tika_response")))
    out["sum_ms"]["bulk"] = round(sum(float(e.get("duration_ms", 0)) for e in bulks))
    if startup and tika_req and summary:
        first, end = ts(tika_req[0]), ts(summary[-1])
        phases = {
            "process_start_to_startup_log_s": ts(startup[0]) - started_epoch,  # interpreter + imports
            "setup_s": first - ts(startup[0]),  # connections, migrate, ensure_index, first page, first download
            "loop_s": end - first,
            "exit_s": started_epoch + wall_s - end,
        }
        out["phases_s"] = {k: round(v, 2) for k, v in phases.items()}
        loop_ms = (end - first) * 1000
        prepare = sums.get("prepare_ms", 0.0)
        other_prepare = prepare - sums.get("download_ms", 0) - sums.get("text_ms", 0) - sums.get("upload_ms", 0)
        # The extractor is a pipeline: Tika runs on the main thread while other threads download,
        # upload and index, so only the main thread's time adds up to the loop.
        out["loop_breakdown_ms"] = {
            "Tika calls (main thread)": round(sums.get("text_ms", 0)),
            "main thread waiting (pipeline fill/drain, hand-offs)": round(loop_ms - sums.get("text_ms", 0)),
        }
        out["overlapped_ms"] = {
            "download (GET to a temp file)": round(sums.get("download_ms", 0)),
            "upload .txt": round(sums.get("upload_ms", 0)),
            "rest of prepare (libmagic, read, document)": round(other_prepare),
            "bulk requests": out["sum_ms"]["bulk"],
            "queued between stages": round(sums.get("queued_ms", 0)),
        }
    return out


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def cpu_busy_cores(before: tuple[float, float]) -> float:
    """Average number of busy cores on the whole machine since `before` (other users included)."""
    busy, total = machine_cpu()
    cores = os.cpu_count() or 1
    return (busy - before[0]) / max(1.0, total - before[1]) * cores


def reset_state(conn: Any, s3: Any, bucket: str, txt_keys: Sequence[str], index: str) -> None:
    with conn.cursor() as cur:
        cur.execute("DELETE FROM qd_gazette_documents")
        cur.execute("DELETE FROM qd_gazette_state")
        cur.execute("UPDATE gazettes SET processed = FALSE")
    bc.delete_objects(s3, bucket, txt_keys)
    bc.delete_index(index)


def cprofile_top(path: Path, n: int = 25) -> list[dict[str, Any]]:
    stats = pstats.Stats(str(path))
    rows = []
    for (file, line, func), (_cc, calls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        rows.append({"function": f"{Path(file).name}:{line}({func})", "calls": calls,
                     "tottime_s": round(tottime, 3), "cumtime_s": round(cumtime, 3)})
    return sorted(rows, key=lambda r: r["tottime_s"], reverse=True)[:n]


def plot(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prof = payload["extractor"]["profile"]
    phases = prof.get("phases_s", {})
    breakdown = {k: v / 1000 for k, v in prof.get("loop_breakdown_ms", {}).items()}
    startup = phases.get("process_start_to_startup_log_s", 0) + phases.get("setup_s", 0) + phases.get("exit_s", 0)
    fig, ax = plt.subplots(figsize=(10, 3.6))
    left = 0.0
    parts = {"start-up, setup, exit": startup, **breakdown}
    cmap = plt.get_cmap("tab10")
    colors = [cmap(i) for i in range(10)]
    for (label, secs), color in zip(parts.items(), colors, strict=False):
        ax.barh("extractor\n(main thread)", secs, left=left, color=color, label=f"{label}: {secs:.1f} s")
        left += max(secs, 0)
    left = 0.0
    busy = {k: v for k, v in prof.get("overlapped_ms", {}).items() if not k.startswith("queued")}  # waits, not work
    for (label, ms), color in zip(busy.items(), colors[4:], strict=False):
        ax.barh("3 other threads\n(busy time summed)", ms / 1000, left=left, color=color,
                label=f"{label}: {ms / 1000:.1f} s")
        left += max(ms / 1000, 0)
    base = payload["baseline"]["mean_s"]
    ax.barh("Tika only", base, color=colors[2])
    ax.axvline(base * TARGET_RATIO, color="tab:red", ls="--", label=f"target {TARGET_RATIO}× baseline")
    ax.set_xlabel(f"seconds for {payload['n']} gazettes (ratio {payload['ratio']:.2f}×)")
    ax.set_title("Extract stage vs Tika-only loop: where the time goes")
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3)
    bc.save_figure(fig, path, bbox_inches="tight")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     epilog="See bench/README.md and docs/benchmarks.md.")
    parser.add_argument("--n", type=int, default=1000, help="gazettes (default 1000)")
    parser.add_argument("--mix", choices=("mixed", "pdf"), default="mixed",
                        help="mixed: 80%% text PDF, 10%% DOCX, 10%% ODT (default); pdf: text PDFs only")
    parser.add_argument("--warmup", type=int, default=None,
                        help="files sent to Tika before timing (default: all N; with 200 the first baseline "
                             "was still 1.8 x slower than the second on 2026-11-30)")
    parser.add_argument("--extract-warmup", type=int, default=200,
                        help="extra gazettes run through the extractor before timing, to warm OpenSearch, "
                             "MinIO and PostgreSQL (default 200; 0 = none, as before 2026-11-30 13:00)")
    parser.add_argument("--service-tika", action="store_true",
                        help="use APACHE_TIKA_SERVER instead of starting a private Tika")
    parser.add_argument("--tika-heap", default="512m", help="-Xmx of the private Tika (default 512m)")
    parser.add_argument("--tika-port", type=int, default=39998, help="port of the private Tika (default 39998)")
    parser.add_argument("--service-opensearch", action="store_true",
                        help="index into OPENSEARCH_HOST instead of a private OpenSearch")
    parser.add_argument("--opensearch-heap", default="512m", help="heap of the private OpenSearch (default 512m)")
    parser.add_argument("--opensearch-port", type=int, default=9271,
                        help="HTTP port of the private OpenSearch, 9201-9299 (default 9271)")
    parser.add_argument("--memory-limit", type=int, default=256 * bc.MIB,
                        help="MEMORY_LIMIT_BYTES for the extractor (default 268435456)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed for the extractor run")
    parser.add_argument("--cprofile", action="store_true", help="also run the extractor under cProfile")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--plot", type=Path, default=bc.IMG_DIR / "extract_throughput.png")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep schema, index and objects")
    args = parser.parse_args()
    if args.warmup is None:
        args.warmup = args.n
    bc.require_services()
    from qd_devtools import loader, territories
    from qd_extractor import storage

    seed = args.seed if args.seed is not None else random.randrange(10**6, 10**9)
    s3, bucket = bc.s3_client(), os.environ["STORAGE_BUCKET"]
    index = f"qd-bench-tput-{uuid.uuid4().hex[:8]}"
    payload: dict[str, Any] = {"benchmark": "extract_throughput", "machine": bc.machine_info(),
                               "command": " ".join(["python", *sys.argv]), "n": args.n, "mix": args.mix,
                               "seed": seed, "memory_limit_bytes": args.memory_limit, "target_ratio": TARGET_RATIO,
                               "extract_warmup": args.extract_warmup}
    work = Path(tempfile.mkdtemp(prefix="qd-bench-tput-"))
    keys: list[str] = []
    txt_keys: list[str] = []
    try:
        with bc.temp_schema("bench_tput", keep=args.keep) as (schema, conn):
            territories.load_territories(conn)
            all_fixtures = make_fixtures(args.extract_warmup + args.n, seed, args.mix)
            t = time.monotonic()
            loaded = loader.load_gazettes(conn, s3, bucket, all_fixtures)
            payload["load_s"] = round(time.monotonic() - t, 1)
            keys = [g.file_path for g in loaded]
            txt_keys = [storage.txt_key(k) for k in keys]
            warm_ids = [g.id for g in loaded[: args.extract_warmup]]
            ids = [g.id for g in loaded[args.extract_warmup:]]
            fixtures = all_fixtures[args.extract_warmup:]
            assert len(set(ids)) == args.n, "duplicate fixtures"
            assert not warm_ids or max(warm_ids) < min(ids), "warm-up ids must precede the timed range"
            files_dir = work / "files"
            files_dir.mkdir()
            files: list[tuple[Path, str]] = []
            for i, f in enumerate(fixtures):
                p = files_dir / f"{i}.{f.extension}"
                p.write_bytes(f.read_bytes())
                files.append((p, f.mime))
            payload["source_bytes"] = sum(f.size for f in fixtures)
            payload["kinds"] = {k: sum(f.kind == k for f in fixtures) for k in sorted({f.kind for f in fixtures})}
            with tika_for(args, work) as (tika_url, tika_pid), \
                    bc.opensearch_for(args.service_opensearch, args.opensearch_port, args.opensearch_heap,
                                      work) as search:
                payload["opensearch"] = search
                payload["tika"] = {"url": tika_url, "private": tika_pid is not None,
                                   "heap": None if tika_pid is None else args.tika_heap}
                print(f"{args.n} gazettes loaded in {payload['load_s']} s; Tika {tika_url}; warming up", flush=True)
                env = bc.extractor_env(schema, index, APACHE_TIKA_SERVER=tika_url,
                                       MEMORY_LIMIT_BYTES=str(args.memory_limit), QD_WORK_DIR=str(work))
                if warm_ids:
                    wm = bc.run_measured([sys.executable, "-m", "qd_extractor", "extract", "--range",
                                          f"{min(warm_ids)}:{max(warm_ids)}"], env, work,
                                         timeout=args.timeout, label="extract-warmup")
                    payload["extract_warmup_s"] = round(wm.wall_s, 2)
                    if wm.returncode != 0:
                        raise SystemExit(f"warm-up extractor run failed with exit code {wm.returncode}")
                tika_loop(tika_url, files[: args.warmup])
                cpu_pids = {"tika": tika_pid, "opensearch": search["pid"], "minio (shared)": bc.service_pid("minio")}

                def cpu_now() -> dict[str, float | None]:
                    return {k: bc.proc_cpu_s(v) for k, v in cpu_pids.items()}

                def cpu_delta(before: dict[str, float | None]) -> dict[str, Any]:
                    after = cpu_now()
                    out: dict[str, Any] = {k: round(a - b, 2) for k, b in before.items()
                                           if b is not None and (a := after[k]) is not None}
                    out["machine_busy_cores"] = round(cpu_busy_cores(busy_before), 2)
                    return out

                cpu0, busy_before = cpu_now(), machine_cpu()
                b1, per_file, received = tika_loop(tika_url, files)
                cpu_b1 = cpu_delta(cpu0)
                print(f"baseline 1: {b1:.1f} s", flush=True)
                cmd = [sys.executable, "-m", "qd_extractor", "extract", "--range", f"{min(ids)}:{max(ids)}"]
                started_epoch = time.time()
                cpu0, busy_before = cpu_now(), machine_cpu()
                m = bc.run_measured(cmd, env, work, timeout=args.timeout, label="extract")
                cpu_ext = cpu_delta(cpu0)
                cpu_ext["extractor"] = round(m.cpu_s, 2)
                print(f"extractor: {m.wall_s:.1f} s (rc {m.returncode})", flush=True)
                b2, per_file2, _ = tika_loop(tika_url, files)
                print(f"baseline 2: {b2:.1f} s", flush=True)
                events = bc.read_events(m.stdout_path)
                prof = profile(events, started_epoch, m.wall_s)
                base = (b1 + b2) / 2
                payload["baseline"] = {
                    "runs_s": [round(b1, 2), round(b2, 2)], "mean_s": round(base, 2),
                    "per_file_ms_median": round(statistics.median(per_file + per_file2) * 1000, 2),
                    "per_file_ms_p95": round(sorted(per_file + per_file2)[int(0.95 * 2 * len(per_file))] * 1000, 2),
                    "text_bytes": received, "cpu_s_during_run_1": cpu_b1}
                payload["extractor"] = {"wall_s": round(m.wall_s, 2), "returncode": m.returncode,
                                        "peak_rss_mib": bc.mib(m.maxrss_kib), "profile": prof,
                                        "cpu_s_during_run": cpu_ext}
                payload["loadavg_after"] = os.getloadavg()
                payload["ratio"] = round(m.wall_s / base, 3)
                payload["overhead_per_gazette_ms"] = round((m.wall_s - base) / args.n * 1000, 2)
                loop_s = prof.get("phases_s", {}).get("loop_s")
                if loop_s:
                    payload["ratio_loop_only"] = round(loop_s / base, 3)
                    payload["overhead_per_gazette_loop_only_ms"] = round((loop_s - base) / args.n * 1000, 2)
                if m.returncode != 0:
                    payload["extractor"]["stderr_tail"] = m.stderr_path.read_text(errors="replace")[-2000:]
                if args.cprofile:
                    reset_state(conn, s3, bucket, txt_keys, index)
                    prof_path = work / "extract.prof"
                    profiler = str(Path(__file__).resolve().parent / "profile_threads.py")
                    pm = bc.run_measured([sys.executable, profiler, str(prof_path), *cmd[2:]], env,
                                         work, timeout=args.timeout, label="extract-cprofile")
                    payload["cprofile"] = {"wall_s": round(pm.wall_s, 2), "returncode": pm.returncode,
                                           "top_tottime": cprofile_top(prof_path)}
                if not args.keep:
                    bc.delete_index(index)
    finally:
        if not args.keep:
            bc.delete_objects(s3, bucket, keys + txt_keys)
            bc.delete_index(index)
        shutil.rmtree(work, ignore_errors=True)
    payload["target_met"] = payload.get("ratio", 99) <= TARGET_RATIO and payload["extractor"]["returncode"] == 0
    path = bc.write_result("extract_throughput", payload)
    if not args.no_plot and "phases_s" in payload["extractor"]["profile"]:
        plot(payload, args.plot)
        print(f"plot: {args.plot}")
    prof = payload["extractor"]["profile"]
    print(f"\nTika-only baseline: {payload['baseline']['runs_s']} s (mean {payload['baseline']['mean_s']} s, "
          f"median {payload['baseline']['per_file_ms_median']} ms/file)")
    print(f"extractor: {payload['extractor']['wall_s']} s, {prof['gazettes_succeeded']} succeeded, "
          f"{prof['failed']} failed, peak RSS {payload['extractor']['peak_rss_mib']} MiB")
    print(f"CPU seconds during the baseline: {payload['baseline']['cpu_s_during_run_1']}; "
          f"during the extractor run: {payload['extractor']['cpu_s_during_run']}")
    print(f"ratio {payload['ratio']}× (target ≤ {TARGET_RATIO}×): {'MET' if payload['target_met'] else 'MISSED'}; "
          f"overhead {payload['overhead_per_gazette_ms']} ms/gazette")
    if "phases_s" in prof:
        print(f"phases: {prof['phases_s']}; loop only: {payload.get('ratio_loop_only')}×")
        for k, v in prof["loop_breakdown_ms"].items():
            print(f"  {k:55s} {v / 1000:8.2f} s  {v / args.n:7.2f} ms/gazette")
        print("  overlapped, on the other threads:")
        for k, v in prof["overlapped_ms"].items():
            print(f"  {k:55s} {v / 1000:8.2f} s  {v / args.n:7.2f} ms/gazette")
    if "cprofile" in payload:
        print(f"cProfile run: {payload['cprofile']['wall_s']} s; top by own time:")
        for row in payload["cprofile"]["top_tottime"][:15]:
            print(f"  {row['tottime_s']:8.3f} s {row['cumtime_s']:8.3f} cum {row['calls']:8d}  {row['function']}")
    print(f"result: {path}")
    return 0 if payload["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
