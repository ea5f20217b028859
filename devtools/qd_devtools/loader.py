"""Put fixtures where upstream expects gazettes: rows in `gazettes`, files in the bucket.

Keys follow the scrapers: `<territory_id>/<YYYY-MM-DD>/<sha1(file_url)>[.<ext>]`, and `file_checksum`
is the real MD5 of the file (streamed, so big files are never read into memory at once).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from boto3.s3.transfer import TransferConfig

from qd_devtools.fixtures import Fixture

_CHUNK = 1 << 20
# boto3's defaults, written out: objects over 8 MiB go up as multipart uploads of 8 MiB parts.
TRANSFER = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024)

INSERT_GAZETTE = """
INSERT INTO gazettes (source_text, date, edition_number, is_extra_edition, power,
  file_checksum, file_path, file_url, scraped_at, created_at, territory_id, processed)
VALUES (%(source_text)s, %(date)s, %(edition_number)s, %(is_extra_edition)s, %(power)s,
  %(file_checksum)s, %(file_path)s, %(file_url)s, %(scraped_at)s, NOW(), %(territory_id)s, FALSE)
ON CONFLICT (territory_id, date, file_checksum) DO NOTHING RETURNING id
"""
SELECT_EXISTING = "SELECT id, file_path FROM gazettes WHERE territory_id = %s AND date = %s AND file_checksum = %s"


@dataclass(frozen=True)
class LoadedGazette:
    """What was stored for one fixture."""

    id: int
    kind: str
    territory_id: str
    date: dt.date
    file_path: str  # the object key
    file_checksum: str  # MD5 hex of the file
    size: int
    inserted: bool  # False when an identical row (territory, date, checksum) already existed


def object_key(fixture: Fixture) -> str:
    """The upstream-style key for a fixture."""
    name = hashlib.sha1(fixture.file_url.encode(), usedforsecurity=False).hexdigest()
    suffix = f".{fixture.extension}" if fixture.extension else ""
    return f"{fixture.territory_id}/{fixture.date.isoformat()}/{name}{suffix}"


def file_md5(fixture: Fixture) -> str:
    """MD5 hex of the fixture's bytes, read in 1 MiB chunks."""
    digest = hashlib.md5(usedforsecurity=False)  # upstream checksum
    with fixture.open() as src:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def upload(s3_client: Any, bucket: str, key: str, fixture: Fixture) -> None:
    """Upload with boto3's managed transfer (multipart above 8 MiB)."""
    if fixture.path is not None:
        s3_client.upload_file(str(fixture.path), bucket, key, Config=TRANSFER)
    else:
        s3_client.upload_fileobj(io.BytesIO(fixture.content or b""), bucket, key, Config=TRANSFER)


def ensure_bucket(s3_client: Any, bucket: str) -> None:
    """Create the bucket when it does not exist yet."""
    from botocore.exceptions import ClientError

    try:
        s3_client.head_bucket(Bucket=bucket)
    except ClientError:
        s3_client.create_bucket(Bucket=bucket)


def load_gazettes(conn: Any, s3_client: Any, bucket: str, fixtures: Iterable[Fixture], *,
                  scraped_at: dt.datetime | None = None) -> list[LoadedGazette]:
    """Upload each fixture and insert its `gazettes` row (processed = FALSE); return what was stored.

    The territories must already be loaded (foreign key). A fixture whose (territory, date, checksum)
    is already present is neither uploaded nor inserted again. Rows are committed one by one.
    """
    when = scraped_at or dt.datetime.now(dt.UTC).replace(tzinfo=None)
    loaded: list[LoadedGazette] = []
    for fixture in fixtures:
        checksum = file_md5(fixture)
        with conn.cursor() as cur:
            cur.execute(SELECT_EXISTING, (fixture.territory_id, fixture.date, checksum))
            existing = cur.fetchone()
        if existing is not None:  # same (territory, date, checksum): upstream would skip it too
            loaded.append(LoadedGazette(int(existing[0]), fixture.kind, fixture.territory_id, fixture.date,
                                        str(existing[1]), checksum, fixture.size, inserted=False))
            continue
        key = object_key(fixture)
        upload(s3_client, bucket, key, fixture)
        row = {"source_text": "", "date": fixture.date, "edition_number": str(1000 + fixture.seed % 9000),
               "is_extra_edition": fixture.seed % 7 == 0, "power": "executive", "file_checksum": checksum,
               "file_path": key, "file_url": fixture.file_url, "scraped_at": when,
               "territory_id": fixture.territory_id}
        with conn.cursor() as cur:
            cur.execute(INSERT_GAZETTE, row)
            got = cur.fetchone()
        if not conn.autocommit:
            conn.commit()
        if got is None:
            raise RuntimeError(f"a concurrent writer inserted the row for {key} first")
        loaded.append(LoadedGazette(int(got[0]), fixture.kind, fixture.territory_id, fixture.date, key,
                                    checksum, fixture.size, inserted=True))
    return loaded
