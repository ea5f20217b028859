"""S3 access that streams: objects go to and from temp files in bounded chunks.

Upstream downloads with boto3's threaded transfer (up to 10 × 8 MB in flight) and uploads texts
from an in-memory `BytesIO`. We stream the body in `io_chunk` pieces to a file and upload from a
file with one part in flight, so memory does not grow with the object.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from qd_extractor.settings import StorageSettings


class ObjectNotFoundError(Exception):
    """The key is not in the bucket (S3 404)."""


class StorageError(Exception):
    """Any other S3 failure (transient: a later attempt may succeed)."""


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


class Storage:
    """One bucket, one client, no thread pools."""

    def __init__(self, settings: StorageSettings, *, part_size: int, io_chunk: int) -> None:
        self.bucket = settings.bucket
        self.io_chunk = io_chunk
        self.client: Any = boto3.session.Session().client(
            "s3", region_name=settings.region, endpoint_url=settings.endpoint,
            aws_access_key_id=settings.access_key, aws_secret_access_key=settings.secret_key,
            config=BotoConfig(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=2))
        # One part in flight: part_size bounds the memory of an upload.
        self.transfer = TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size,
                                       max_concurrency=1, use_threads=False, io_chunksize=io_chunk)

    def head(self, key: str) -> ObjectInfo:
        """Size of an object, without downloading it (so oversized files are refused cheaply)."""
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise ObjectNotFoundError(key) from None
            raise StorageError(f"HEAD {key}: {err}") from err
        except BotoCoreError as err:
            raise StorageError(f"HEAD {key}: {err}") from err
        return ObjectInfo(key=key, size=int(response["ContentLength"]))

    def download(self, key: str, dest: Path) -> int:
        """Stream an object into `dest`; return its size."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            size = 0
            with dest.open("wb") as out:
                for chunk in response["Body"].iter_chunks(self.io_chunk):
                    out.write(chunk)
                    size += len(chunk)
            return size
        except ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                raise ObjectNotFoundError(key) from None
            raise StorageError(f"GET {key}: {err}") from err
        except BotoCoreError as err:
            raise StorageError(f"GET {key}: {err}") from err

    def upload_file(self, source: Path, key: str) -> None:
        """Upload a file (multipart above part_size); no ContentType and no ACL, as upstream."""
        try:
            self.client.upload_file(str(source), self.bucket, key, Config=self.transfer)
        except (ClientError, BotoCoreError) as err:
            raise StorageError(f"PUT {key}: {err}") from err

    def upload_bytes(self, data: bytes, key: str) -> None:
        """Upload a small in-memory object (segment texts, which are bounded by the budget)."""
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        except (ClientError, BotoCoreError) as err:
            raise StorageError(f"PUT {key}: {err}") from err


def txt_key(file_path: str) -> str:
    """Upstream's text key: `Path(file_path).with_suffix(".txt")` (appends when there is no suffix)."""
    return str(Path(file_path).with_suffix(".txt"))
