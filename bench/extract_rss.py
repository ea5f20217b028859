"""Extract-stage peak RSS of the whole extractor process, measured from outside, as files grow.

Target (issue): peak RSS ≤ 200 MiB for a single-gazette range whether the gazette is a 1 MB, a 100 MB
or a 1 GB text PDF — flat as files grow — with the budget of a small pod (MEMORY_LIMIT_BYTES=256 MiB).

For each size: a text PDF is generated with `qd_devtools.fixtures.big_pdf` into a temp dir, loaded
(uploaded to the bucket, one `gazettes` row in a throw-away schema), the local copy deleted, then
`python -m qd_extractor extract --range ID:ID` runs as a child process. Its peak RSS is the kernel's
`ru_maxrss` from wait4() (what `/usr/bin/time -v` prints), cross-checked by polling
/proc/<pid>/status (VmRSS, VmHWM) every 50 ms, which also gives the RSS curve.

A 1 GB PDF is beyond a 512 MiB-heap Tika, so the benchmark starts its own Tika (default heap 6g, port
39999, fresh for every size so its own peak RSS is per file) and stops it by pid. Tika's RSS is not
the extractor's, but is recorded for information.

The index document of a big gazette holds up to `max_index_text` of text (limit/12: 21 MiB at 256 MiB).
Indexing one such document (term vectors with offsets on three fields) runs a 512 MiB-heap OpenSearch
out of memory — the shared test node's write thread dies and the request never answers — so the
benchmark also starts its own OpenSearch (default heap 2g, HTTP port 9270) unless --service-opensearch.

Usage (with the services' environment, `eval "$(hack/services.sh env)"`):
    python bench/extract_rss.py [--sizes-mb 1,100,1024] [--memory-limit 268435456] [--tika-heap 6g]

Writes bench/results/extract_rss-<UTC stamp>.json and (unless --no-plot) docs/img/extract_rss.png.
Cleans up its schema, index and objects unless --keep.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as bc

TARGET_MIB = 200


def wide_text(path: Path, size_mb: int, seed: int) -> Any:
    """A UTF-8 plain-text gazette whose text has characters beyond Latin-1 (“quotes”, – dashes, • bullets).

    Real Tika output has them; one such character makes every Python copy of the text 2 bytes per
    character instead of 1, so this shows the in-memory cost of the capped index text at its worst
    common case. Plain text is read locally (no Tika), through the same cap and bulk path.
    """
    import datetime as dt

    from qd_devtools import fixtures as fx
    from qd_devtools.territories import read_territories
    from qd_devtools.text import line_pool

    rng = random.Random(seed)
    pool = line_pool(seed, width=120)
    town = rng.choice([t for t in read_territories() if t.state_code == "AL" and not t.is_association])
    target, written = size_mb * bc.MIB, 0
    with path.open("w", encoding="utf-8") as f:
        i = 0
        while written < target:
            line = rng.choice(pool)
            if i % 20 == 0:
                line = f"• “{line}” – {i}"
            data = line + "\n"
            f.write(data)
            written += len(data.encode("utf-8"))
            i += 1
    return fx.Fixture("wide_txt", "txt", "text/plain", None, town.id,
                      dt.date(2024, 1, 1) + dt.timedelta(days=seed % 365), seed, path=path)


def measure_one(args: argparse.Namespace, kind: str, size_mb: int, seed: int, schema: str, conn: Any, s3: Any,
                bucket: str, index: str, work: Path, keys: list[str], search_pid: int | None) -> dict[str, Any]:
    from qd_devtools import fixtures as fx
    from qd_devtools import loader
    from qd_extractor import storage

    result: dict[str, Any] = {"kind": kind, "size_mb_requested": size_mb, "seed": seed}
    source = work / f"{kind}-{size_mb}mb"
    t = time.monotonic()
    fixture = fx.big_pdf(source, size_mb, seed=seed) if kind == "pdf" else wide_text(source, size_mb, seed)
    result["generate_s"] = round(time.monotonic() - t, 1)
    result["file_bytes"] = fixture.size
    t = time.monotonic()
    (gazette,) = loader.load_gazettes(conn, s3, bucket, [fixture])
    keys += [gazette.file_path, storage.txt_key(gazette.file_path)]
    result["load_s"] = round(time.monotonic() - t, 1)
    source.unlink()  # the extractor downloads its own copy; keep the disk footprint down
    result["gazette_id"] = gazette.id

    label = f"{kind}-{size_mb}"
    extract_tmp = work / f"extract-{label}"
    extract_tmp.mkdir()
    env = bc.extractor_env(
        schema, index, APACHE_TIKA_SERVER="", MEMORY_LIMIT_BYTES=str(args.memory_limit),
        MAX_GAZETTE_FILE_SIZE_MB=str(max(500, 2 * size_mb)), QD_TIKA_READ_TIMEOUT=str(args.timeout),
        QD_WORK_DIR=str(extract_tmp))
    with bc.TikaServer(args.tika_port, args.tika_heap, work / f"tika-{label}.log") as tika:
        env["APACHE_TIKA_SERVER"] = tika.url
        watch = {"tika": tika.pid}
        if search_pid is not None:
            watch["opensearch"] = search_pid
        tika_idle = bc.proc_status_kib(tika.pid)
        print(f"[{label} MB] extracting gazette {gazette.id} ({result['file_bytes'] / bc.MIB:.0f} MiB) "
              f"with Tika pid {tika.pid} idle RSS {bc.mib(tika_idle.get('VmRSS', 0))} MiB", flush=True)
        m = bc.run_measured([sys.executable, "-m", "qd_extractor", "extract", "--range", f"{gazette.id}:{gazette.id}"],
                            env, work, timeout=args.timeout, watch=watch, interval=args.interval,
                            label=f"extract-{label}")
        tika_end = bc.proc_status_kib(tika.pid)
    shutil.rmtree(extract_tmp, ignore_errors=True)

    events = bc.read_events(m.stdout_path)
    outcome = next((e for e in events if e.get("event_type") == "gazette_outcome"), {})
    summary = next((e for e in events if e.get("event_type") == "range_summary"), {})
    tika_resp = next((e for e in events if e.get("event_type") == "tika_response"), {})
    bulk = [e for e in events if e.get("event_type") == "opensearch_operation" and e.get("operation") == "bulk"]
    with conn.cursor() as cur:
        cur.execute("SELECT state, error_class, error_message FROM qd_gazette_state WHERE gazette_id=%s "
                    "AND stage='extract'", (gazette.id,))
        state = cur.fetchone()
        cur.execute("SELECT doc_id, text_bytes, truncated FROM qd_gazette_documents WHERE gazette_id=%s",
                    (gazette.id,))
        docs = cur.fetchall()
    indexed_text_bytes = None
    if docs:
        resp = requests.get(f"{os.environ['OPENSEARCH_HOST'].rstrip('/')}/{index}/_doc/{docs[0][0]}",
                            params={"_source_includes": "source_text"}, timeout=120,
                            auth=bc._search_auth())
        if resp.ok:
            indexed_text_bytes = len(resp.json()["_source"].get("source_text", "").encode("utf-8"))
    sampled_max = max((kib for _, kib in m.sampler.series["child"]), default=0)
    result.update({
        "returncode": m.returncode, "timed_out": m.timed_out, "wall_s": round(m.wall_s, 1),
        # The largest of the kernel's ru_maxrss and what polling saw (they agree within ~1 MiB).
        "extractor_peak_rss_mib": bc.mib(max(m.maxrss_kib, sampled_max, m.sampler.hwm_kib["child"])),
        "extractor_ru_maxrss_mib": bc.mib(m.maxrss_kib),
        "extractor_peak_rss_sampled_mib": bc.mib(sampled_max),
        "extractor_vmhwm_sampled_mib": bc.mib(m.sampler.hwm_kib["child"]),
        "tika_idle_rss_mib": bc.mib(tika_idle.get("VmRSS", 0)),
        "tika_peak_rss_mib": bc.mib(max(tika_end.get("VmHWM", 0), m.sampler.hwm_kib["tika"])),
        "opensearch_rss_max_during_run_mib": bc.mib(max((k for _, k in m.sampler.series.get("opensearch", [])),
                                                        default=0)),
        "state": state[0] if state else None, "error_class": state[1] if state else None,
        "error_message": state[2] if state else None,
        "text_bytes": docs[0][1] if docs else summary.get("text_bytes"),
        "truncated": docs[0][2] if docs else None,
        "indexed_text_bytes": indexed_text_bytes,
        "timings_ms": outcome.get("timings_ms"), "tika_duration_ms": tika_resp.get("duration_ms"),
        "bulk_requests": [{k: e.get(k) for k in ("count", "bytes", "duration_ms", "errors")} for e in bulk],
        "rss_series_kib": {"extractor": m.sampler.thinned("child"), "tika": m.sampler.thinned("tika")},
    })
    if m.returncode != 0:
        result["stderr_tail"] = m.stderr_path.read_text(errors="replace")[-2000:]
    if not args.keep:  # free MinIO's disk before the next size
        bc.delete_objects(s3, bucket, [gazette.file_path, storage.txt_key(gazette.file_path)])
    return result


def plot(results: list[dict[str, Any]], limit: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    pdfs = [r for r in results if r["kind"] == "pdf"]
    wide = [r for r in results if r["kind"] != "pdf"]
    top = max(limit / bc.MIB, *(r["extractor_peak_rss_mib"] for r in results))
    left.plot([r["file_bytes"] / bc.MIB for r in pdfs], [r["extractor_peak_rss_mib"] for r in pdfs], "o-",
              label="text PDF (via Tika)")
    if wide:
        left.plot([r["file_bytes"] / bc.MIB for r in wide], [r["extractor_peak_rss_mib"] for r in wide], "s",
                  color="tab:purple", label="UTF-8 .txt with non-Latin-1 punctuation")
    for r in results:
        left.annotate(f"{r['extractor_peak_rss_mib']:.0f}", (r["file_bytes"] / bc.MIB, r["extractor_peak_rss_mib"]),
                      textcoords="offset points", xytext=(0, 8), ha="center")
    left.axhline(TARGET_MIB, color="tab:red", ls="--", label=f"target {TARGET_MIB} MiB")
    left.axhline(limit / bc.MIB, color="tab:gray", ls=":", label=f"MEMORY_LIMIT_BYTES {limit // bc.MIB} MiB")
    left.set_xscale("log")
    left.set_xlabel("file size (MiB, log scale)")
    left.set_ylabel("peak RSS of the extractor process (MiB)")
    left.set_ylim(0, top * 1.15)
    left.set_title("Extract stage: peak RSS vs file size")
    left.legend(loc="lower right", fontsize=8)
    for r in results:
        series = r["rss_series_kib"]["extractor"]
        if series:
            right.plot([t / r["wall_s"] for t, _ in series], [k / 1024 for _, k in series],
                       label=f"{r['file_bytes'] / bc.MIB:.0f} MiB {'PDF' if r['kind'] == 'pdf' else '.txt'} "
                             f"({r['wall_s']:.0f} s)")
    right.axhline(TARGET_MIB, color="tab:red", ls="--")
    right.set_ylim(0, top * 1.15)
    right.set_xlabel("fraction of the run's wall time")
    right.set_ylabel("extractor RSS (MiB)")
    right.set_title("RSS polled every 50 ms (short spikes can fall between polls)")
    right.legend(fontsize=8, loc="lower right")
    bc.save_figure(fig, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     epilog="See bench/README.md and docs/benchmarks.md.")
    parser.add_argument("--sizes-mb", default="1,100,1024",
                        help="comma-separated PDF sizes in MiB (default 1,100,1024)")
    parser.add_argument("--memory-limit", type=int, default=256 * bc.MIB,
                        help="MEMORY_LIMIT_BYTES for the extractor (default 268435456, a 256 MiB pod)")
    parser.add_argument("--wide-text-mb", type=int, default=100,
                        help="also run a UTF-8 .txt gazette of this size whose text has non-Latin-1 punctuation "
                             "(worst common case for the in-memory index text; 0 to skip; default 100)")
    parser.add_argument("--tika-heap", default="6g", help="-Xmx of the benchmark's own Tika (default 6g)")
    parser.add_argument("--tika-port", type=int, default=39999, help="loopback port of that Tika (default 39999)")
    parser.add_argument("--opensearch-heap", default="2g",
                        help="heap of the benchmark's own OpenSearch (default 2g: a 21 MiB document OOMs 512m)")
    parser.add_argument("--opensearch-port", type=int, default=9270,
                        help="HTTP port of that OpenSearch, 9201-9299 (default 9270)")
    parser.add_argument("--service-opensearch", action="store_true",
                        help="index into OPENSEARCH_HOST instead (its 512m heap cannot take the capped text)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds allowed per extractor run")
    parser.add_argument("--interval", type=float, default=0.05, help="/proc polling interval in seconds")
    parser.add_argument("--work-dir", type=Path, default=None, help="where the PDFs and temp files go")
    parser.add_argument("--seed", type=int, default=None, help="fixture seed (default: random)")
    parser.add_argument("--plot", type=Path, default=bc.IMG_DIR / "extract_rss.png")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep schema, index and objects for inspection")
    args = parser.parse_args()
    bc.require_services()
    from qd_devtools import territories
    from qd_extractor.memory import Budget

    sizes = [int(s) for s in args.sizes_mb.split(",") if s.strip()]
    seed = args.seed if args.seed is not None else random.randrange(10**6, 10**9)
    s3, bucket = bc.s3_client(), os.environ["STORAGE_BUCKET"]
    index = f"qd-bench-rss-{uuid.uuid4().hex[:8]}"
    payload: dict[str, Any] = {
        "benchmark": "extract_rss", "machine": bc.machine_info(), "command": " ".join(["python", *sys.argv]),
        "memory_limit_bytes": args.memory_limit, "budget": vars(Budget.from_limit(args.memory_limit)),
        "tika_heap": args.tika_heap, "target_mib": TARGET_MIB, "seed": seed, "results": [],
    }
    keys: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="qd-bench-rss-", dir=args.work_dir))
    try:
        with bc.opensearch_for(args.service_opensearch, args.opensearch_port, args.opensearch_heap, work) as search:
            payload["opensearch"] = search
            try:
                with bc.temp_schema("bench_rss", keep=args.keep) as (schema, conn):
                    territories.load_territories(conn)
                    runs = [("pdf", size) for size in sizes] + ([("wide_txt", args.wide_text_mb)]
                                                                 if args.wide_text_mb else [])
                    for i, (kind, size) in enumerate(runs):
                        r = measure_one(args, kind, size, seed + i, schema, conn, s3, bucket, index, work, keys,
                                        search["pid"])
                        payload["results"].append(r)
                        print(f"[{kind}-{size} MB] rc={r['returncode']} state={r['state']} wall={r['wall_s']} s "
                              f"extractor peak={r['extractor_peak_rss_mib']} MiB "
                              f"(sampled {r['extractor_peak_rss_sampled_mib']}) tika peak={r['tika_peak_rss_mib']} "
                              f"MiB text={r['text_bytes']} B truncated={r['truncated']}", flush=True)
            finally:
                if not args.keep:
                    bc.delete_objects(s3, bucket, keys)
                    bc.delete_index(index)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    peaks = [r["extractor_peak_rss_mib"] for r in payload["results"]]
    payload["max_peak_mib"] = max(peaks)
    payload["target_met"] = all(p <= TARGET_MIB for p in peaks) and all(
        r["state"] == "succeeded" for r in payload["results"])
    path = bc.write_result("extract_rss", payload)
    if not args.no_plot:
        plot(payload["results"], args.memory_limit, args.plot)
        print(f"plot: {args.plot}")
    print("\nkind     | size MiB | peak RSS MiB | Tika peak MiB | wall s | text MiB | truncated | state")
    for r in payload["results"]:
        print(f"{r['kind']:8s} | {r['file_bytes'] / bc.MIB:8.1f} | {r['extractor_peak_rss_mib']:12.1f} | "
              f"{r['tika_peak_rss_mib']:13.1f} | {r['wall_s']:6.1f} | {(r['text_bytes'] or 0) / bc.MIB:8.1f} | "
              f"{r['truncated']!s:9} | {r['state']}")
    print(f"target ≤ {TARGET_MIB} MiB at every size: {'MET' if payload['target_met'] else 'MISSED'}; result: {path}")
    return 0 if payload["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
