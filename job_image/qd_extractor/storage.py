"""S3 access that streams: objects go to and from temp files in bounded chunks.

Upstream downloads with boto3's threaded transfer (up to 10 × 8 MB in flight) and uploads texts
from an in-memory `BytesIO`. We stream the body in `io_chunk` pieces to a file and upload from a
file with one part in flight, so memory does not grow with the object.

Errors are sorted by who they concern: a missing key (`ObjectNotFoundError`) and other per-object
answers (`StorageError`) belong to one gazette; an endpoint that cannot be reached or answers 5xx
after botocore's retries (`StorageUnavailableError`) is down for everyone, and stops the range.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import boto3
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from qd_extractor.settings import StorageSettings


class ObjectNotFoundError(Exception):
    """The key is not in the bucket (S3 404)."""


class StorageError(Exception):
    """Any other S3 failure (transient: a later attempt may succeed)."""


class StorageUnavailableError(StorageError):
    """S3 cannot be reached, or answers 5xx, after botocore's retries: down for every gazette."""


_NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})
#: Codes S3 uses for "overloaded or broken", whatever the status (SlowDown and ServiceUnavailable are 503).
_UNAVAILABLE_CODES = frozenset({"SlowDown", "ServiceUnavailable", "InternalError"})
#: No connection, or one that failed before a whole answer came (connection errors cover connect
#: timeouts, refused connections and proxy/TLS failures; HTTP client errors cover closed connections,
#: read timeouts and broken response streams).
_CONNECTION_ERRORS = (BotoConnectionError, HTTPClientError)


class ObjectTooLargeError(Exception):
    """The object is larger than the caller's limit; its body was not read."""

    def __init__(self, key: str, size: int) -> None:
        super().__init__(f"{key}: {size} bytes")
        self.size = size


@dataclasses.dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int


class Storage:
    """One bucket, one client, no transfer thread pools.

    The client is thread-safe: the extract pipeline downloads on one thread while another uploads,
    hence two pooled connections.
    """

    def __init__(self, settings: StorageSettings, *, part_size: int, io_chunk: int) -> None:
        self.bucket = settings.bucket
        self.io_chunk = io_chunk
        self.client: Any = boto3.session.Session().client(
            "s3", region_name=settings.region, endpoint_url=settings.endpoint,
            aws_access_key_id=settings.access_key, aws_secret_access_key=settings.secret_key,
            config=BotoConfig(retries={"max_attempts": 5, "mode": "standard"}, max_pool_connections=2))
        self.endpoint = self.client.meta.endpoint_url  # named in outage messages
        self.part_size = part_size
        # One part in flight: part_size bounds the memory of an upload.
        self.transfer = TransferConfig(multipart_threshold=part_size, multipart_chunksize=part_size,
                                       max_concurrency=1, use_threads=False, io_chunksize=io_chunk)

    def _error(self, operation: str, key: str, err: Exception) -> Exception:
        """Our exception for a boto3/botocore one: the object's fault, or the service's."""
        cause = err.__context__ if isinstance(err, S3UploadFailedError) else err  # boto3 wraps multipart errors
        if isinstance(cause, ClientError):
            code = str(cause.response.get("Error", {}).get("Code", ""))
            status = int(cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            if code in _NOT_FOUND_CODES:
                return ObjectNotFoundError(key)
            if status >= 500 or code in _UNAVAILABLE_CODES:
                answer = f"HTTP {status}" + (f" {code}" if code != str(status) else "")
                return StorageUnavailableError(f"S3 at {self.endpoint} answers {answer} after retries: "
                                               f"{operation} {key}: {cause}")
        elif isinstance(cause, _CONNECTION_ERRORS):
            return StorageUnavailableError(f"S3 at {self.endpoint} unreachable after retries: "
                                           f"{operation} {key}: {type(cause).__name__}: {cause}")
        return StorageError(f"{operation} {key}: {err}")

    def head(self, key: str) -> ObjectInfo:
        """Size of an object, without downloading it (so oversized files are refused cheaply)."""
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=key)
        except (ClientError, BotoCoreError) as err:
            raise self._error("HEAD", key, err) from err
        return ObjectInfo(key=key, size=int(response["ContentLength"]))

    def download(self, key: str, dest: Path, max_bytes: int | None = None) -> int:
        """Stream an object into `dest`; return its size.

        One GET, no HEAD: the response's ContentLength gives the size before any of the body is read,
        so an object over `max_bytes` raises ObjectTooLargeError without being downloaded.
        """
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
            body = response["Body"]
            length = int(response.get("ContentLength", 0))
            if max_bytes is not None and length > max_bytes:
                body.close()
                raise ObjectTooLargeError(key, length)
            size = 0
            with dest.open("wb") as out:
                for chunk in body.iter_chunks(self.io_chunk):
                    out.write(chunk)
                    size += len(chunk)
            return size
        except (ClientError, BotoCoreError) as err:
            raise self._error("GET", key, err) from err

    def upload_file(self, source: Path, key: str) -> None:
        """Upload a file; no ContentType and no ACL, as upstream.

        Below part_size one `put_object` streamed from the file (the s3transfer machinery costs more
        client CPU than a small gazette's whole upload); from part_size on, multipart with one part
        in flight.
        """
        try:
            size = source.stat().st_size
            if size < self.part_size:
                with source.open("rb") as body:
                    self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentLength=size)
                return
            self.client.upload_file(str(source), self.bucket, key, Config=self.transfer)
        except (ClientError, BotoCoreError, S3UploadFailedError) as err:
            raise self._error("PUT", key, err) from err

    def upload_bytes(self, data: bytes, key: str) -> None:
        """Upload a small in-memory object (segment texts, which are bounded by the budget)."""
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        except (ClientError, BotoCoreError) as err:
            raise self._error("PUT", key, err) from err


def txt_key(file_path: str) -> str:
    """Upstream's text key: `Path(file_path).with_suffix(".txt")` (appends when there is no suffix)."""
    return str(Path(file_path).with_suffix(".txt"))
