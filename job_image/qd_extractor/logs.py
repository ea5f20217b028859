"""JSON-lines logging with upstream's field and event names.

Upstream's log tooling (scripts/analyze_logs.py, Loki queries) reads one JSON object per line with
`timestamp`, `level`, `logger`, `message` and extras, and greps `event_type` for `tika_request`,
`tika_response`, `tika_error`, `opensearch_operation` and `opensearch_error`. We keep those and add
our own events (`gazette_outcome`, `range_summary`, …) the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any

# Upstream event names (do not rename: downstream tooling greps them).
TIKA_REQUEST = "tika_request"
TIKA_RESPONSE = "tika_response"
TIKA_ERROR = "tika_error"
OPENSEARCH_OPERATION = "opensearch_operation"
OPENSEARCH_ERROR = "opensearch_error"
# Ours.
GAZETTE_OUTCOME = "gazette_outcome"
RANGE_SUMMARY = "range_summary"
CIRCUIT = "circuit_breaker"

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; every `extra=` field becomes a top-level key."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "timestamp": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, ensure_ascii=False)


def setup(debug: bool = False) -> None:
    """Install the JSON handler on the root logger (idempotent), like upstream's setup."""
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)
    for noisy in ("opensearch", "opensearchpy", "urllib3", "botocore", "boto3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def event(logger: logging.Logger, event_type: str, message: str, *, level: int = logging.INFO,
          **fields: Any) -> None:
    """Log one structured event."""
    logger.log(level, message, extra={"event_type": event_type, **fields})
