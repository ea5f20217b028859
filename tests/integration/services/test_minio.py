"""MinIO is a real S3: multipart uploads split into parts and come back byte for byte."""

from __future__ import annotations

import hashlib
import io
import os
import uuid
from typing import Any

import pytest
from boto3.s3.transfer import TransferConfig

pytestmark = pytest.mark.integration

MIB = 1024 * 1024


def test_20mb_multipart_upload_roundtrip(s3: Any, bucket: str) -> None:
    payload = os.urandom(20 * MIB)
    key = f"smoke/{uuid.uuid4()}.bin"
    config = TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB)
    s3.upload_fileobj(io.BytesIO(payload), bucket, key, Config=config)
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
        assert head["ContentLength"] == len(payload)
        # A multipart ETag is md5-of-part-md5s followed by "-<parts>": 20 MiB / 5 MiB = 4 parts.
        assert head["ETag"].strip('"').endswith("-4")
        out = io.BytesIO()
        s3.download_fileobj(bucket, key, out, Config=config)
        assert hashlib.md5(out.getvalue()).digest() == hashlib.md5(payload).digest()
    finally:
        s3.delete_object(Bucket=bucket, Key=key)


def test_missing_key_is_a_404(s3: Any, bucket: str) -> None:
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as err:
        s3.head_object(Bucket=bucket, Key=f"missing/{uuid.uuid4()}")
    assert err.value.response["Error"]["Code"] == "404"


def test_too_small_parts_are_rejected(s3: Any, bucket: str) -> None:
    """A real S3 refuses non-final parts under 5 MiB: proof this is not a permissive fake."""
    from botocore.exceptions import ClientError

    key = f"smoke/{uuid.uuid4()}.bin"
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key)
    try:
        parts = []
        for n in (1, 2):
            part = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload["UploadId"], PartNumber=n,
                                  Body=b"x" * 100)
            parts.append({"PartNumber": n, "ETag": part["ETag"]})
        with pytest.raises(ClientError) as err:
            s3.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"],
                                         MultipartUpload={"Parts": parts})
        assert err.value.response["Error"]["Code"] == "EntityTooSmall"
    finally:
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"])
