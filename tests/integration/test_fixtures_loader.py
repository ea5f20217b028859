"""The loader stores fixtures like the scrapers do: upstream rows in PostgreSQL, files in MinIO."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qd_devtools import fixtures
from qd_devtools.loader import LoadedGazette, load_gazettes, object_key
from qd_devtools.territories import load_territories, read_territories

pytestmark = pytest.mark.integration

COLUMNS = ("id, source_text, date, edition_number, is_extra_edition, power, file_checksum, file_path, "
           "file_url, scraped_at, created_at, territory_id, processed")


@pytest.fixture()
def cleanup(s3: Any, bucket: str) -> Iterator[list[str]]:
    """Keys to delete from the bucket after the test."""
    keys: list[str] = []
    yield keys
    for key in keys:
        s3.delete_object(Bucket=bucket, Key=key)


def s3_md5(s3: Any, bucket: str, key: str) -> str:
    digest = hashlib.md5()
    for chunk in s3.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(1 << 20):
        digest.update(chunk)
    return digest.hexdigest()


def rows(conn: Any) -> dict[int, dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(f"SELECT {COLUMNS} FROM gazettes")
        names = [c.name for c in cur.description]
        return {r[0]: dict(zip(names, r, strict=True)) for r in cur.fetchall()}


def test_territories_load_is_idempotent(conn: Any) -> None:
    assert load_territories(conn) == len(read_territories())
    assert load_territories(conn) == len(read_territories())
    with conn.cursor() as cur:
        cur.execute("SELECT name, state_code FROM territories WHERE id = '2700000'")
        assert cur.fetchone() == ("Associação dos Municípios Alagoanos", "AL")


def test_every_kind_loads_with_real_md5(conn: Any, s3: Any, bucket: str, cleanup: list[str]) -> None:
    load_territories(conn)
    batch = fixtures.all_fixtures(seed=21)
    cleanup.extend(object_key(f) for f in batch)
    loaded = load_gazettes(conn, s3, bucket, batch)
    assert [g.kind for g in loaded] == [f.kind for f in batch]
    assert all(g.inserted for g in loaded)
    stored = rows(conn)
    assert set(stored) == {g.id for g in loaded}
    for fx, g in zip(batch, loaded, strict=True):
        row = stored[g.id]
        assert row["file_path"] == g.file_path == object_key(fx)
        assert re.fullmatch(r"\d{7}/\d{4}-\d{2}-\d{2}/[0-9a-f]{40}(\.[a-z]+)?", g.file_path)
        assert row["file_checksum"] == g.file_checksum == hashlib.md5(fx.read_bytes()).hexdigest()
        assert s3_md5(s3, bucket, g.file_path) == g.file_checksum
        assert (row["territory_id"], row["date"]) == (fx.territory_id, fx.date)
        assert row["processed"] is False and row["power"] == "executive" and row["source_text"] == ""
        assert row["file_url"] == fx.file_url and row["scraped_at"] is not None and row["created_at"] is not None
    no_ext = next(g for g in loaded if g.kind == "html_no_ext")
    assert "." not in no_ext.file_path.rsplit("/", 1)[1]
    assert next(g for g in loaded if g.kind == "empty").file_checksum == hashlib.md5(b"").hexdigest()


def test_reloading_inserts_nothing(conn: Any, s3: Any, bucket: str, cleanup: list[str]) -> None:
    load_territories(conn)
    batch = list(fixtures.mixed_batch(6, seed=4))
    cleanup.extend(object_key(f) for f in batch)
    first = load_gazettes(conn, s3, bucket, batch)
    again = load_gazettes(conn, s3, bucket, batch)
    assert not any(g.inserted for g in again)
    assert [(g.id, g.file_path, g.file_checksum) for g in again] == [
        (g.id, g.file_path, g.file_checksum) for g in first]
    assert len(rows(conn)) == 6


def test_big_file_goes_up_multipart(conn: Any, s3: Any, bucket: str, cleanup: list[str], tmp_path: Path) -> None:
    load_territories(conn)
    fx = fixtures.big_pdf(tmp_path / "big.pdf", 20, seed=8)
    cleanup.append(object_key(fx))
    (g,) = load_gazettes(conn, s3, bucket, [fx])
    assert isinstance(g, LoadedGazette) and g.size == fx.size
    head = s3.head_object(Bucket=bucket, Key=g.file_path)
    assert head["ContentLength"] == fx.size
    assert re.fullmatch(r"[0-9a-f]{32}-3", head["ETag"].strip('"'))  # 20 MiB in 8 MiB parts
    assert s3_md5(s3, bucket, g.file_path) == g.file_checksum == rows(conn)[g.id]["file_checksum"]


def test_seed_command(schema: str, conn: Any, s3: Any, bucket: str, cleanup: list[str],
                      monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from qd_devtools import cli

    monkeypatch.setenv("PGOPTIONS", f"-c search_path={schema}")  # libpq: the CLI connects into our schema
    cleanup.extend(object_key(f) for f in fixtures.mixed_batch(20, seed=13))
    assert cli.main(["seed", "--count", "20", "--seed", "13"]) == 0
    assert "gazettes: 20 inserted, 0 already present" in capsys.readouterr().out
    stored = rows(conn)
    assert len(stored) == 20
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM territories")
        assert cur.fetchone() == (len(read_territories()),)
    for row in stored.values():
        assert s3_md5(s3, bucket, row["file_path"]) == row["file_checksum"]
