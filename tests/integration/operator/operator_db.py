"""Helpers for the operator's database tests: gazettes inserted in bulk with SQL, run specs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from qd_operator import spec

MACEIO, ARAPIRACA, RECIFE = "2704302", "2700300", "2611606"


def add_gazettes(conn: Any, n: int, *, territory: str = MACEIO, date: str = "2024-03-01",
                 processed: bool | None = False, ext: str = ".pdf") -> tuple[int, int]:
    """Insert n gazettes in one statement; return their (lowest, highest) ids."""
    with conn.cursor() as cur:
        cur.execute(
            "WITH ins AS (INSERT INTO gazettes (source_text, date, edition_number, is_extra_edition, power,"
            " file_checksum, file_path, file_url, scraped_at, created_at, territory_id, processed)"
            " SELECT '', %(date)s::date, '1', FALSE, 'executive', md5(i::text || random()::text),"
            " %(territory)s || '/' || %(date)s || '/' || i || %(ext)s, 'https://x.invalid',"
            " now() - interval '3 days', now(), %(territory)s, %(processed)s FROM generate_series(1, %(n)s) i"
            " RETURNING id) SELECT min(id), max(id) FROM ins",
            {"date": date, "territory": territory, "processed": processed, "ext": ext, "n": n})
        low, high = cur.fetchone()
    return int(low), int(high)


def run_spec(mode: str = "UNPROCESSED", **selection: Any) -> spec.RunSpec:
    extra = selection.pop("spec", {})
    return spec.parse({"selection": {"mode": mode, **selection}, "image": {"repository": "localhost/qd"}, **extra})


@dataclass
class Run:
    uid: str
    name: str
    namespace: str = "qd"


def new_run(name: str = "run") -> Run:
    return Run(str(uuid.uuid4()), f"{name}-{uuid.uuid4().hex[:6]}")


def scalar(conn: Any, sql: str, params: Any = None) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return cur.fetchone()[0]
