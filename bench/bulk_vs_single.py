"""Indexing M gazette documents: `BulkWriter` (`_bulk`) vs one `index` request per document (upstream).

Target (issue): bulk indexing is ≥ 10 × faster than upstream's one-request-per-document pattern.

The same M documents (upstream's 17 fields; `source_text` of realistic gazette text, sizes log-uniform
between --min-kb and --max-kb, default 2–100 KB) go into two fresh indexes created with the real
gazette mapping (`mappings.gazette_index_body()`: Brazilian analyzers, term vectors with offsets on
three fields), on the same client (`search.client.make_client`, upstream's transport options):

* single: per document `client.index(index=..., body=doc, id=..., refresh=False, request_timeout=60)`,
  up to 4 attempts 1/2/4 s apart, then upstream's `len(json.dumps(doc, default=date_serializer))` size
  and a JSON log line, as in upstream's `OpenSearchInterface.index_document`;
* bulk: `qd_extractor.search.bulk.BulkWriter.add()` for each document and a final `flush()`, with the
  extractor's limits (max_bytes from the memory budget of --memory-limit, max_docs 500, and
  QD_BULK_CONCURRENCY's default of 2 requests in flight, each at most max_bytes / 2).

Lever sweeps: `--concurrency 1,2,3` times one bulk variant per value (the first is the reference),
`--max-bytes` changes the writer's byte bound, `--http-compress` gzips request bodies, and
`--skip-single` leaves out the slow one-request-per-document pattern.

Both log through the extractor's JSON formatter into /dev/null, so formatting cost is paid by both.
By default it runs against a private OpenSearch (heap 512m like the shared test node, port 9272),
so other users of the shared node neither disturb nor are disturbed (--service-opensearch to use
OPENSEARCH_HOST). A short warm-up (both patterns, into a throw-away index) precedes the timed runs; the indexes are
refreshed and counted afterwards (not timed) and deleted at the end unless --keep.

Usage (with the services' environment, `eval "$(hack/services.sh env)"`):
    python bench/bulk_vs_single.py [--docs 2000] [--min-kb 2] [--max-kb 100] [--repeats 1] [--concurrency 2]

Writes bench/results/bulk_vs_single-<UTC stamp>.json and (unless --no-plot) docs/img/bulk_vs_single.png.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import math
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as bc

TARGET_SPEEDUP = 10.0
DEFAULT_CONCURRENCY = 2  # QD_BULK_CONCURRENCY's default (job_image/qd_extractor/settings.py)


def date_serializer(obj: Any) -> str:
    """What upstream passes to json.dumps to size a document for its log."""
    if isinstance(obj, dt.date | dt.datetime):
        return obj.isoformat()
    raise TypeError(f"Type {type(obj)} not serializable")


def make_documents(m: int, seed: int, min_kb: float, max_kb: float) -> list[tuple[str, dict[str, Any]]]:
    """M (doc_id, 17-field document) pairs with gazette-like texts of log-uniform size."""
    from qd_devtools.territories import read_territories
    from qd_devtools.text import line_pool
    from qd_extractor.search import documents as docs

    rng = random.Random(seed)
    pool = line_pool(seed, width=100, size=4000)
    towns = [t for t in read_territories() if not t.is_association]
    out = []
    for i in range(m):
        target = int(1024 * math.exp(rng.uniform(math.log(min_kb), math.log(max_kb))))
        lines: list[str] = []
        size = 0
        while size < target:
            line = rng.choice(pool)
            lines.append(line)
            size += len(line.encode("utf-8")) + 1
        text = "\n".join(lines)
        town = rng.choice(towns)
        day = dt.date(2023, 1, 1) + dt.timedelta(days=rng.randrange(730))
        checksum = hashlib.md5(f"{seed}:{i}".encode(), usedforsecurity=False).hexdigest()
        key = f"{town.id}/{day.isoformat()}/{hashlib.sha1(checksum.encode(), usedforsecurity=False).hexdigest()}.pdf"
        row = bc.upstream_row(i, town, day, checksum, key)
        doc = docs.gazette_document(row, url=f"data.queridodiario.ok.org.br/{key}",
                                    file_raw_txt=f"data.queridodiario.ok.org.br/{key[:-4]}.txt", text=text)
        out.append((checksum, doc))
    return out


def null_logger(name: str) -> logging.Logger:
    from qd_extractor import logs

    log = logging.getLogger(name)
    log.propagate = False
    log.setLevel(logging.INFO)
    handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115
    handler.setFormatter(logs.JsonFormatter())
    log.handlers = [handler]
    return log


def index_single(client: Any, index: str, documents: list[tuple[str, dict[str, Any]]], log: logging.Logger,
                 timeout: float = 60) -> tuple[float, list[float], int]:
    """Upstream's pattern: one request per document (4 attempts, 1/2/4 s apart), then its json.dumps size log.

    Returns (seconds, cumulative seconds after each document, retries).
    """
    from qd_extractor import logs

    marks: list[float] = []
    retries = 0
    started = time.perf_counter()
    for doc_id, doc in documents:
        t = time.time()
        delay = 1.0
        for attempt in range(4):
            try:
                client.index(index=index, body=doc, id=doc_id, refresh=False, request_timeout=timeout)
                break
            except Exception:
                if attempt == 3:
                    raise
                retries += 1
                time.sleep(delay)
                delay *= 2
        duration_ms = (time.time() - t) * 1000
        document_size = len(json.dumps(doc, default=date_serializer))
        logs.event(log, logs.OPENSEARCH_OPERATION, "OPENSEARCH_OPERATION", operation="index", index_name=index,
                   duration_ms=duration_ms, document_id=doc_id, success=True, document_size=document_size)
        marks.append(time.perf_counter() - started)
    return time.perf_counter() - started, marks, retries


def index_bulk(client: Any, index: str, documents: list[tuple[str, dict[str, Any]]], log: logging.Logger,
               max_bytes: int, max_docs: int, concurrency: int) -> tuple[float, list[tuple[int, float]], int, int]:
    """BulkWriter as the extractor uses it. Returns (s, [(docs acknowledged, s)], failures, batches of results)."""
    from qd_extractor.search.bulk import BulkWriter

    writer = BulkWriter(client, max_bytes=max_bytes, max_docs=max_docs, max_retries=5, backoff_base_s=1.0,
                        logger=log, concurrency=concurrency)
    acked, failed, requests_ = 0, 0, 0
    marks: list[tuple[int, float]] = []
    started = time.perf_counter()
    for doc_id, doc in documents:
        results = writer.add(index, doc_id, doc)
        if results:
            requests_ += 1
            acked += len(results)
            failed += sum(not r.ok for r in results)
            marks.append((acked, time.perf_counter() - started))
    results = writer.flush()
    if results:
        requests_ += 1
        acked += len(results)
        failed += sum(not r.ok for r in results)
    total = time.perf_counter() - started
    marks.append((acked, total))
    return total, marks, failed, requests_


def fresh_index(client: Any, name: str) -> float:
    from qd_extractor.search import client as search_client
    from qd_extractor.search import mappings

    t = time.perf_counter()
    search_client.ensure_index(client, name, mappings.gazette_index_body())
    return time.perf_counter() - t


def count(client: Any, index: str) -> int:
    client.indices.refresh(index=index)
    return int(client.count(index=index)["count"])


def plot(payload: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    single = payload["curves"]["single"]
    ax.plot(single, range(1, len(single) + 1), label=f"one request per document: {payload['single']['median_s']:.1f} s")
    bulk = payload["curves"]["bulk"]
    ax.plot([0] + [t for _, t in bulk], [0] + [n for n, _ in bulk], "o-", ms=3,
            label=f"BulkWriter (_bulk): {payload['bulk']['median_s']:.1f} s")
    ax.set_xlabel("seconds")
    ax.set_ylabel("documents acknowledged")
    ax.set_title(f"Indexing {payload['docs']} gazette documents "
                 f"({payload['doc_bytes']['mean'] / 1024:.0f} KB mean): {payload['speedup']:.1f}× faster in bulk")
    ax.legend()
    bc.save_figure(fig, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     epilog="See bench/README.md and docs/benchmarks.md.")
    parser.add_argument("--docs", type=int, default=2000, help="documents per run (default 2000)")
    parser.add_argument("--min-kb", type=float, default=2, help="smallest text in KB (default 2)")
    parser.add_argument("--max-kb", type=float, default=100, help="largest text in KB (default 100)")
    parser.add_argument("--repeats", type=int, default=1, help="timed runs of each pattern (default 1)")
    parser.add_argument("--memory-limit", type=int, default=256 * bc.MIB,
                        help="budget the bulk byte limit comes from (default 268435456 → limit/24)")
    parser.add_argument("--max-docs", type=int, default=500, help="documents per bulk request (QD_BULK_MAX_DOCS)")
    parser.add_argument("--concurrency", default=str(DEFAULT_CONCURRENCY),
                        help=f"bulk requests in flight (QD_BULK_CONCURRENCY, default {DEFAULT_CONCURRENCY}); "
                             "a comma list times one bulk variant per value, the first is the reference")
    parser.add_argument("--max-bytes", type=int, default=None,
                        help="byte bound of the writer instead of the budget's (limit/24)")
    parser.add_argument("--http-compress", action="store_true",
                        help="gzip request bodies (opensearch-py http_compress)")
    parser.add_argument("--skip-single", action="store_true",
                        help="time only the bulk variants (lever sweeps; no speedup is computed)")
    parser.add_argument("--service-opensearch", action="store_true",
                        help="use OPENSEARCH_HOST instead of a private OpenSearch")
    parser.add_argument("--opensearch-heap", default="512m", help="heap of the private OpenSearch (default 512m)")
    parser.add_argument("--opensearch-port", type=int, default=9272,
                        help="HTTP port of the private OpenSearch, 9201-9299 (default 9272)")
    parser.add_argument("--warmup", type=int, default=100, help="documents per pattern in the warm-up")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--plot", type=Path, default=bc.IMG_DIR / "bulk_vs_single.png")
    parser.add_argument("--no-plot", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the indexes")
    args = parser.parse_args()
    bc.require_services()

    seed = args.seed if args.seed is not None else random.randrange(10**6, 10**9)
    work = Path(tempfile.mkdtemp(prefix="qd-bench-bulk-"))
    try:
        with bc.opensearch_for(args.service_opensearch, args.opensearch_port, args.opensearch_heap, work) as search:
            return run(args, seed, search)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, seed: int, search: dict[str, Any]) -> int:
    from opensearchpy import OpenSearch

    from qd_extractor.memory import Budget
    from qd_extractor.search import client as search_client

    budget = Budget.from_limit(args.memory_limit)
    max_bytes = args.max_bytes or budget.bulk_bytes
    levels = [int(c) for c in str(args.concurrency).split(",")]
    variants = {("bulk" if len(levels) == 1 else f"bulk-c{c}"): c for c in levels}
    patterns = ([] if args.skip_single else ["single"]) + list(variants)
    documents = make_documents(args.docs, seed, args.min_kb, args.max_kb)
    sizes = sorted(len(json.dumps(d, default=date_serializer).encode()) for _, d in documents)
    settings = search_client.SearchSettings(
        host=os.environ["OPENSEARCH_HOST"], index="unused", user=os.environ.get("OPENSEARCH_USER"),
        password=os.environ.get("OPENSEARCH_PASSWORD"))
    client = search_client.make_client(settings)
    if args.http_compress:  # the same transport options plus gzip request bodies
        client = OpenSearch(hosts=[settings.host], timeout=settings.timeout_s, max_retries=settings.max_retries,
                            retry_on_timeout=settings.retry_on_timeout, http_compress=True,
                            **({"http_auth": (settings.user, settings.password or "")} if settings.user else {}))
    log = null_logger("qd_bench.index")
    tag = uuid.uuid4().hex[:8]
    payload: dict[str, Any] = {
        "benchmark": "bulk_vs_single", "machine": bc.machine_info(), "command": " ".join(["python", *sys.argv]),
        "docs": args.docs, "seed": seed, "max_bytes": max_bytes, "max_docs": args.max_docs,
        "concurrency": levels, "http_compress": args.http_compress,
        "doc_bytes": {"min": sizes[0], "median": sizes[len(sizes) // 2], "mean": round(statistics.mean(sizes)),
                      "max": sizes[-1], "total": sum(sizes)},
        "opensearch": search, "target_speedup": TARGET_SPEEDUP,
        **{p: {"runs_s": []} for p in patterns}, "index_create_s": [], "curves": {},
    }
    made: list[str] = []
    try:
        warm = f"qd-bench-warm-{tag}"
        made.append(warm)
        fresh_index(client, warm)
        if not args.skip_single:
            index_single(client, warm, documents[: args.warmup], log)  # warm-up
        index_bulk(client, warm, documents[-args.warmup:], log, max_bytes, args.max_docs, levels[0])
        bc.delete_index(warm)
        for r in range(args.repeats):
            for pattern in patterns:
                name = f"qd-bench-{pattern}-{tag}-{r}"
                made.append(name)
                payload["index_create_s"].append(round(fresh_index(client, name), 3))
                server_cpu0, client_cpu0 = bc.proc_cpu_s(search["pid"]), time.process_time()
                load0 = os.getloadavg()[0]
                if pattern == "single":
                    secs, marks, retries = index_single(client, name, documents, log)
                    payload["curves"]["single"] = [round(t, 3) for t in marks]
                    payload["single"].setdefault("retries", []).append(retries)
                else:
                    secs, bmarks, failed, nreq = index_bulk(client, name, documents, log, max_bytes,
                                                            args.max_docs, variants[pattern])
                    payload["curves"][pattern] = [(n, round(t, 3)) for n, t in bmarks]
                    payload[pattern].setdefault("result_batches", []).append(nreq)
                    payload[pattern].setdefault("failed", []).append(failed)
                payload[pattern]["runs_s"].append(round(secs, 2))
                payload[pattern].setdefault("loadavg_1m", []).append([round(load0, 2), round(os.getloadavg()[0], 2)])
                server_cpu1 = bc.proc_cpu_s(search["pid"])
                payload[pattern].setdefault("client_cpu_s", []).append(round(time.process_time() - client_cpu0, 2))
                if server_cpu0 is not None and server_cpu1 is not None:
                    payload[pattern].setdefault("opensearch_cpu_s", []).append(round(server_cpu1 - server_cpu0, 2))
                got = count(client, name)
                payload[pattern]["indexed"] = got
                print(f"run {r + 1}: {pattern:8s} {secs:7.2f} s ({args.docs / secs:6.1f} docs/s), {got} documents, "
                      f"load {load0:.2f}→{os.getloadavg()[0]:.2f}", flush=True)
                if not args.keep:
                    bc.delete_index(name)
    finally:
        if not args.keep:
            for name in made:
                bc.delete_index(name)
    for pattern in patterns:
        runs = payload[pattern]["runs_s"]
        payload[pattern]["median_s"] = statistics.median(runs)
        payload[pattern]["docs_per_s"] = round(args.docs / statistics.median(runs), 1)
        payload[pattern]["mb_per_s"] = round(payload["doc_bytes"]["total"] / 1e6 / statistics.median(runs), 2)
    first_bulk = next(iter(variants))
    if not args.skip_single:
        for pattern in variants:
            payload[pattern]["speedup"] = round(payload["single"]["median_s"] / payload[pattern]["median_s"], 2)
        payload["speedup"] = payload[first_bulk]["speedup"]
    payload["target_met"] = (not args.skip_single and payload["speedup"] >= TARGET_SPEEDUP
                             and all(payload[p]["indexed"] == args.docs for p in patterns))
    path = bc.write_result("bulk_vs_single", payload)
    if not args.no_plot and not args.skip_single and len(variants) == 1:
        plot(payload, args.plot)
        print(f"plot: {args.plot}")
    db = payload["doc_bytes"]
    print(f"\n{args.docs} documents, JSON sizes {db['min']}–{db['max']} B (median {db['median']}, "
          f"total {db['total'] / 1e6:.1f} MB); bulk limits {max_bytes} B / {args.max_docs} docs, "
          f"concurrency {levels}, http_compress {args.http_compress}")
    for pattern in patterns:
        r = payload[pattern]
        print(f"{pattern:8s}: {r['median_s']} s ({r['docs_per_s']} docs/s"
              + (f", speedup {r['speedup']}×" if "speedup" in r else "")
              + f"); CPU s: client {r.get('client_cpu_s')}, OpenSearch {r.get('opensearch_cpu_s', 'n/a')}")
    if not args.skip_single:
        print(f"speedup {payload['speedup']}× (target ≥ {TARGET_SPEEDUP}×): "
              f"{'MET' if payload['target_met'] else 'MISSED'}")
    print(f"result: {path}")
    return 0 if payload["target_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
