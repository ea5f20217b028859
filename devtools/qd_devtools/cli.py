"""`qd-devtools`: load territories, write fixtures, seed the database and bucket, make big PDFs.

Service settings come from the upstream environment variable names (POSTGRES_*, STORAGE_*); a missing
one stops the command with its name instead of a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

PG_VARS = ("POSTGRES_HOST", "POSTGRES_PORT", "POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD")
S3_VARS = ("STORAGE_ENDPOINT", "STORAGE_REGION", "STORAGE_ACCESS_KEY", "STORAGE_ACCESS_SECRET", "STORAGE_BUCKET")


def require_env(*names: str) -> dict[str, str]:
    """Return the variables, or exit naming the first one that is missing or empty."""
    values: dict[str, str] = {}
    for name in names:
        value = os.environ.get(name)
        if not value:
            raise SystemExit(f"qd-devtools: environment variable {name} is not set")
        values[name] = value
    return values


def connect_postgres() -> Any:
    """An autocommit psycopg2 connection from POSTGRES_*."""
    import psycopg2

    env = require_env(*PG_VARS)
    conn = psycopg2.connect(host=env["POSTGRES_HOST"], port=env["POSTGRES_PORT"], dbname=env["POSTGRES_DB"],
                            user=env["POSTGRES_USER"], password=env["POSTGRES_PASSWORD"])
    conn.autocommit = True
    return conn


def s3_client() -> tuple[Any, str]:
    """A boto3 S3 client built like upstream's, and the bucket name, from STORAGE_*."""
    import boto3

    env = require_env(*S3_VARS)
    client = boto3.session.Session().client(
        "s3", region_name=env["STORAGE_REGION"], endpoint_url=env["STORAGE_ENDPOINT"],
        aws_access_key_id=env["STORAGE_ACCESS_KEY"], aws_secret_access_key=env["STORAGE_ACCESS_SECRET"])
    return client, env["STORAGE_BUCKET"]


def cmd_territories(_: argparse.Namespace) -> int:
    """Load the packaged territories (idempotent)."""
    from qd_devtools.territories import load_territories

    conn = connect_postgres()
    try:
        print(f"territories present: {load_territories(conn)}")
    finally:
        conn.close()
    return 0


def cmd_fixtures(args: argparse.Namespace) -> int:
    """Write one file per fixture kind; print path, MIME, size, territory and date."""
    from qd_devtools.fixtures import all_fixtures

    directory = Path(args.dir)
    directory.mkdir(parents=True, exist_ok=True)
    for fixture in all_fixtures(args.seed):
        path = fixture.write_to(directory)
        print(f"{path}\t{fixture.mime}\t{fixture.size}\t{fixture.territory_id}\t{fixture.date}")
    return 0


def cmd_seed(args: argparse.Namespace) -> int:
    """Load territories, then upload and insert N mixed gazettes."""
    from qd_devtools.fixtures import mixed_batch
    from qd_devtools.loader import ensure_bucket, load_gazettes
    from qd_devtools.territories import load_territories

    client, bucket = s3_client()
    conn = connect_postgres()
    try:
        print(f"territories present: {load_territories(conn)}")
        ensure_bucket(client, bucket)
        loaded = load_gazettes(conn, client, bucket, mixed_batch(args.count, args.seed))
    finally:
        conn.close()
    new = sum(g.inserted for g in loaded)
    kinds = Counter(g.kind for g in loaded)
    print(f"gazettes: {new} inserted, {len(loaded) - new} already present, bucket {bucket}")
    print("kinds: " + ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())))
    return 0


def cmd_big_pdf(args: argparse.Namespace) -> int:
    """Stream a PDF of about --size-mb MiB to OUT."""
    from qd_devtools.pdf import write_big_pdf

    started = time.monotonic()
    with Path(args.out).open("wb") as out:
        size = write_big_pdf(out, args.size_mb * 1024 * 1024, seed=args.seed, compress=args.compress)
    print(f"{args.out}: {size} bytes ({size / 1048576:.1f} MiB) in {time.monotonic() - started:.1f}s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests)."""
    parser = argparse.ArgumentParser(prog="qd-devtools", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("territories", help="load the packaged territories into PostgreSQL").set_defaults(
        func=cmd_territories)
    fx = sub.add_parser("fixtures", help="write one file of every fixture kind into DIR")
    fx.add_argument("dir")
    fx.add_argument("--seed", type=int, default=0)
    fx.set_defaults(func=cmd_fixtures)
    seed = sub.add_parser("seed", help="territories + N mixed gazettes into PostgreSQL and the bucket")
    seed.add_argument("--count", type=int, required=True)
    seed.add_argument("--seed", type=int, default=0)
    seed.set_defaults(func=cmd_seed)
    big = sub.add_parser("big-pdf", help="stream a large text PDF (bounded memory) for benchmarks")
    big.add_argument("--size-mb", type=int, required=True)
    big.add_argument("--seed", type=int, default=0)
    big.add_argument("--compress", action="store_true", help="Flate-compress the page streams")
    big.add_argument("out")
    big.set_defaults(func=cmd_big_pdf)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `qd-devtools` console script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
