"""OpenSearch client construction and idempotent index creation.

The client mirrors upstream's (`index/opensearch.py`): one host URL, basic auth, a 60 s request
timeout and opensearch-py's own transport retries (3, also on timeouts). Reading the upstream
variables (OPENSEARCH_HOST, OPENSEARCH_INDEX, OPENSEARCH_USER, OPENSEARCH_PASSWORD) is the caller's job.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from typing import Any

from opensearchpy import OpenSearch
from opensearchpy.exceptions import RequestError, TransportError

from qd_extractor import logs
from qd_extractor.search import mapping_check

_log = logging.getLogger("qd_extractor.search")
#: Log event: an existing index is mapped otherwise than we would create it (it is still used).
MAPPING_MISMATCH = "index_mapping_mismatch"


@dataclasses.dataclass(frozen=True)
class SearchSettings:
    """Where and how to reach OpenSearch."""

    host: str  #: OPENSEARCH_HOST, e.g. http://opensearch:9200 (scheme, host and port in one URL)
    index: str  #: OPENSEARCH_INDEX: the gazette index (upstream compose `querido-diario`, production `queridodiario`)
    user: str | None = None  #: OPENSEARCH_USER; no auth header at all when unset or empty
    password: str | None = None  #: OPENSEARCH_PASSWORD
    timeout_s: float = 60.0  #: per-request timeout in seconds (upstream: 60)
    max_retries: int = 3  #: transport-level retries on connection errors and 502/503/504 (upstream: 3)
    retry_on_timeout: bool = True  #: also retry timed-out requests (upstream: True)


def make_client(settings: SearchSettings) -> OpenSearch:
    """Build the client with upstream's transport options."""
    kwargs: dict[str, Any] = {
        "hosts": [settings.host],
        "timeout": settings.timeout_s,
        "max_retries": settings.max_retries,
        "retry_on_timeout": settings.retry_on_timeout,
    }
    if settings.user:
        kwargs["http_auth"] = (settings.user, settings.password or "")
    return OpenSearch(**kwargs)


def ensure_index(client: OpenSearch, name: str, body: Mapping[str, Any]) -> bool:
    """Create `name` with `body` only if it is missing; return whether this call created it.

    Like upstream, an existing index is left alone (mapping changes need a reindex), but a mapping
    that differs from `body` is logged at ERROR, field by field. Several Jobs may start at once, so
    losing the creation race (`resource_already_exists_exception`) is not an error.
    """
    if client.indices.exists(index=name):
        try:
            problems = mapping_check.index_differences(client.indices.get_mapping(index=name), name, body)
        except TransportError as err:  # e.g. a user without the mappings permission: report only
            _log.warning("could not read the mapping of index %s: %s", name, err)
            return False
        if problems:
            logs.event(_log, MAPPING_MISMATCH, f"index {name} is not mapped as upstream creates it; it is used as is,"
                       " but documents or theme searches may fail (reindex into a new index to fix)",
                       level=logging.ERROR, index_name=name, problems=problems[:20])
        return False
    start = time.monotonic()
    try:
        # Upstream passes timeout=60, which opensearch-py consumes as the request timeout (not the
        # API's ack timeout); the client's timeout (SearchSettings.timeout_s, default 60) does the same.
        client.indices.create(index=name, body=dict(body))
    except RequestError as exc:
        if exc.error == "resource_already_exists_exception":
            return False
        raise
    logs.event(_log, logs.OPENSEARCH_OPERATION, "OPENSEARCH_OPERATION", operation="create_index", index_name=name,
               duration_ms=round((time.monotonic() - start) * 1000, 2), success=True)
    return True
