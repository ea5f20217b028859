#!/usr/bin/env python3
"""Create an S3 bucket if missing, with a hand-signed SigV4 request (stdlib only).

The service scripts run before any virtualenv exists, so this avoids boto3 and the mc client.
Usage: s3_bucket.py ENDPOINT ACCESS_KEY SECRET_KEY BUCKET
"""

import datetime
import hashlib
import hmac
import sys
import urllib.error
import urllib.parse
import urllib.request


def _sign(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def put_bucket(endpoint: str, access: str, secret: str, bucket: str, region: str = "us-east-1") -> int:
    """Send PUT /bucket; return the HTTP status (200 created, 409 already ours)."""
    url = urllib.parse.urlsplit(endpoint)
    now = datetime.datetime.now(datetime.UTC)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload = hashlib.sha256(b"").hexdigest()
    headers = {"host": url.netloc, "x-amz-content-sha256": payload, "x-amz-date": amz_date}
    signed = ";".join(sorted(headers))
    canonical = "\n".join(["PUT", f"/{bucket}", "", *(f"{k}:{headers[k]}" for k in sorted(headers)),
                           "", signed, payload])
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = _sign(_sign(_sign(_sign(f"AWS4{secret}".encode(), day), region), "s3"), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    auth = f"AWS4-HMAC-SHA256 Credential={access}/{scope}, SignedHeaders={signed}, Signature={signature}"
    req = urllib.request.Request(f"{endpoint}/{bucket}", method="PUT",
                                 headers={**headers, "Authorization": auth})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as err:
        body = err.read().decode(errors="replace")
        if err.code == 409 and "BucketAlreadyOwnedByYou" in body:
            return 409
        print(f"PUT /{bucket} -> HTTP {err.code}: {body[:300]}", file=sys.stderr)
        return err.code


if __name__ == "__main__":
    status = put_bucket(*sys.argv[1:5])
    sys.exit(0 if status in (200, 409) else 1)
