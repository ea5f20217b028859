"""Planning a million pending gazettes: wall time and the operator process's memory growth.

Targets (docs/operator-design.md, "constant operator memory"): planning ≤ 10 s and ≤ 50 MiB RSS
growth, because the operator never fetches gazette ids — only a few aggregate rows.

Usage (with the services' environment, `eval "$(hack/services.sh env)"`):
    python bench/plan_million.py [--gazettes 1000000] [--per-range 500] [--keep]

Everything happens in a throw-away schema (dropped at the end unless --keep).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import psycopg2

from qd_core import db
from qd_devtools import territories
from qd_operator import planning, progress, ranges, spec, waves

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM_SCHEMA = ROOT / "hack" / "sql" / "upstream_schema.sql"


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def seed(conn: Any, gazettes: int) -> None:
    """`gazettes` pending gazettes in 2024 over every Alagoas municipality, plus 1,000 from 2023."""
    territories.load_territories(conn)
    with conn.cursor() as cur:
        cur.execute("SELECT array_agg(id ORDER BY id) FROM territories WHERE state_code = 'AL' AND id NOT LIKE %s",
                    ("%00000",))
        ids = cur.fetchone()[0]
        cur.execute(
            "INSERT INTO gazettes (source_text, date, edition_number, is_extra_edition, power, file_checksum,"
            " file_path, file_url, scraped_at, created_at, territory_id, processed)"
            " SELECT NULL, date '2024-01-01' + (i %% 366), '1', FALSE, 'executive', md5(i::text),"
            " 'x/' || i || '.pdf', 'https://x.invalid', now() - interval '3 days', now(),"
            " (%(ids)s::text[])[1 + i %% array_length(%(ids)s::text[], 1)], FALSE"
            " FROM generate_series(1, %(n)s) i", {"ids": ids, "n": gazettes})
        cur.execute(
            "INSERT INTO gazettes (source_text, date, edition_number, is_extra_edition, power, file_checksum,"
            " file_path, file_url, scraped_at, created_at, territory_id, processed)"
            " SELECT NULL, date '2023-06-01', '1', FALSE, 'executive', md5('old' || i), 'old/' || i || '.pdf',"
            " 'https://x.invalid', now(), now(), '2704302', FALSE FROM generate_series(1, 1000) i")
        cur.execute("ANALYZE gazettes")
        cur.execute("ANALYZE territories")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gazettes", type=int, default=1_000_000)
    parser.add_argument("--per-range", type=int, default=500)
    parser.add_argument("--keep", action="store_true", help="keep the schema for inspection")
    args = parser.parse_args()

    settings = db.DatabaseSettings.from_env()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = settings.connect("qd-bench")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
    conn = psycopg2.connect(host=settings.host, port=settings.port, dbname=settings.dbname, user=settings.user,
                            password=settings.password, options=f"-c search_path={schema}")
    conn.autocommit = True
    results: dict[str, Any] = {"gazettes": args.gazettes, "gazettes_per_range": args.per_range}
    try:
        with conn, conn.cursor() as cur:
            cur.execute(UPSTREAM_SCHEMA.read_text())
        db.migrate(conn)
        t = time.perf_counter()
        seed(conn, args.gazettes)
        results["seed_s"] = round(time.perf_counter() - t, 2)

        # Another active run (2023 only): the big run's overlap check must scan and find nothing.
        old = spec.parse({"selection": {"mode": "UNPROCESSED", "dateTo": "2023-12-31"}, "image": {"repository": "x"}})
        assert planning.plan(conn, uid="other", namespace="qd", name="old", run=old).outcome is planning.Outcome.PLANNED
        run = spec.parse({"selection": {"mode": "UNPROCESSED", "dateFrom": "2024-01-01"},
                          "ranges": {"gazettesPerRange": args.per_range}, "image": {"repository": "x"}})

        rss_before = rss_kib()
        tracemalloc.start()
        t = time.perf_counter()
        result = planning.plan(conn, uid="bench", namespace="qd", name="million", run=run)
        results["plan_s"] = round(time.perf_counter() - t, 2)
        results["python_peak_kib"] = tracemalloc.get_traced_memory()[1] // 1024
        tracemalloc.stop()
        results["rss_growth_mib"] = round((rss_kib() - rss_before) / 1024, 2)
        results["outcome"], results["ranges"], results["planned"] = result.outcome.value, result.ranges, result.gazettes

        t = time.perf_counter()
        again = planning.plan(conn, uid="bench", namespace="qd", name="million", run=run)
        results["replan_s"] = round(time.perf_counter() - t, 3)
        assert not again.new and again.gazettes == result.gazettes

        t = time.perf_counter()
        pending = ranges.pending_ranges(conn, "bench", per_group=run.wave_size)
        (wave,) = waves.choose(pending, free=run.parallelism, wave_size=run.wave_size, next_numbers={})
        assert ranges.assign_wave(conn, "bench", wave, "million-extract-t0-w0")
        results["wave_s"] = round(time.perf_counter() - t, 3)

        t = time.perf_counter()
        halves = ranges.split_range(conn, "bench", wave.ranges[0].range_id)
        results["split_s"] = round(time.perf_counter() - t, 3)
        assert halves is not None and halves[0].gazettes + halves[1].gazettes == wave.ranges[0].gazettes

        # The status timer's query, once every planned gazette has a state row of this run.
        with conn.cursor() as cur:
            cur.execute("INSERT INTO qd_gazette_state (gazette_id, stage, state, run_id, finished_at)"
                        " SELECT id, 'extract', CASE WHEN id % 100 = 0 THEN 'failed' ELSE 'succeeded' END,"
                        " 'bench', now() FROM gazettes WHERE date >= '2024-01-01'")
            cur.execute("ANALYZE qd_gazette_state")
        t = time.perf_counter()
        loaded = progress.load(conn, "bench")
        results["progress_1m_state_rows_s"] = round(time.perf_counter() - t, 3)
        assert loaded is not None and loaded.planned_gazettes == args.gazettes

    finally:
        conn.close()
        if not args.keep:
            with admin.cursor() as cur:
                cur.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()
    results["targets_met"] = results.get("plan_s", 99) <= 10 and results.get("rss_growth_mib", 99) <= 50
    print(json.dumps(results, indent=2))
    return 0 if results["targets_met"] else 1


if __name__ == "__main__":
    sys.exit(main())
