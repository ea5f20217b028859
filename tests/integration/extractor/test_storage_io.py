"""S3 access of the extract pipeline against MinIO: one GET (no HEAD), PutObject for small texts."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

import pytest

from qd_extractor import storage
from qd_extractor.settings import StorageSettings

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


@pytest.fixture()
def store(bucket: str) -> storage.Storage:
    settings = StorageSettings(bucket=bucket, region=os.environ.get("STORAGE_REGION", "us-east-1"),
                               access_key=os.environ["STORAGE_ACCESS_KEY"],
                               secret_key=os.environ["STORAGE_ACCESS_SECRET"], endpoint=os.environ["STORAGE_ENDPOINT"])
    return storage.Storage(settings, part_size=5 * MIB, io_chunk=64 * 1024)


def calls(store: storage.Storage) -> list[str]:
    """Names of the S3 operations the client sends, recorded through botocore's own event hook."""
    seen: list[str] = []
    store.client.meta.events.register("before-call.s3.*", lambda model, **_: seen.append(model.name))
    return seen


def test_download_is_one_get_and_refuses_oversized_objects_unread(store: storage.Storage, s3: Any, bucket: str,
                                                                  tmp_path: Path) -> None:
    key = f"test-io/{uuid.uuid4().hex}.pdf"
    s3.put_object(Bucket=bucket, Key=key, Body=b"x" * 300_000)
    seen = calls(store)
    try:
        assert store.download(key, tmp_path / "a", max_bytes=300_000) == 300_000
        assert (tmp_path / "a").stat().st_size == 300_000
        with pytest.raises(storage.ObjectTooLargeError) as err:
            store.download(key, tmp_path / "b", max_bytes=299_999)
        assert err.value.size == 300_000 and not (tmp_path / "b").exists()
        with pytest.raises(storage.ObjectNotFoundError):
            store.download(key + ".missing", tmp_path / "c", max_bytes=1)
        assert seen == ["GetObject"] * 3
    finally:
        s3.delete_object(Bucket=bucket, Key=key)


def test_small_texts_go_in_one_put_big_ones_by_multipart(store: storage.Storage, s3: Any, bucket: str,
                                                         tmp_path: Path) -> None:
    small, big = tmp_path / "small.txt", tmp_path / "big.txt"
    small.write_text("ação " * 1000, encoding="utf-8")
    big.write_bytes(b"y" * (6 * MIB))
    keys = [f"test-io/{uuid.uuid4().hex}.txt" for _ in range(2)]
    seen = calls(store)
    try:
        store.upload_file(small, keys[0])
        assert seen == ["PutObject"]
        store.upload_file(big, keys[1])
        assert seen[1:] == ["CreateMultipartUpload", "UploadPart", "UploadPart", "CompleteMultipartUpload"]
        obj = s3.get_object(Bucket=bucket, Key=keys[0])
        assert obj["Body"].read() == small.read_bytes()
        assert obj.get("ContentType") in (None, "binary/octet-stream", "application/octet-stream")
        assert s3.head_object(Bucket=bucket, Key=keys[1])["ContentLength"] == 6 * MIB
    finally:
        for key in keys:
            s3.delete_object(Bucket=bucket, Key=key)
