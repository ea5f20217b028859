"""Extractor settings, read once at start-up from upstream's variable names plus our own.

Every field documents its variable, unit and default. Anything invalid raises
`qd_core.config.ConfigError` naming the variable, and the CLI exits with the configuration code
before touching a single gazette.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from qd_core import config, db, selection, states
from qd_extractor import memory


@dataclasses.dataclass(frozen=True)
class StorageSettings:
    """S3 (upstream's STORAGE_* names)."""

    bucket: str  #: STORAGE_BUCKET (required)
    region: str  #: STORAGE_REGION (required by upstream; default "us-east-1" here)
    access_key: str | None  #: STORAGE_ACCESS_KEY
    secret_key: str | None  #: STORAGE_ACCESS_SECRET
    endpoint: str | None  #: STORAGE_ENDPOINT; unset means AWS S3, as upstream


@dataclasses.dataclass(frozen=True)
class TikaSettings:
    """Apache Tika server (upstream's TIKA_* names and defaults)."""

    url: str  #: APACHE_TIKA_SERVER (required), e.g. http://tika:9998
    max_retries: int = 5  #: TIKA_MAX_RETRIES: attempts per request on connection errors/timeouts
    retry_base_delay: float = 2.0  #: TIKA_RETRY_BASE_DELAY, seconds: waits 2, 4, 8, 16 s (+10 % jitter)
    pool_size: int = 10  #: TIKA_CONNECTION_POOL_SIZE
    chunk_size: int = 8192  #: TIKA_CHUNK_SIZE, bytes per chunk of the chunked PUT body
    connect_timeout: float = 30.0  #: QD_TIKA_CONNECT_TIMEOUT, seconds (upstream: 30)
    read_timeout: float = 300.0  #: QD_TIKA_READ_TIMEOUT, seconds (upstream: 300)
    #: QD_TIKA_OUTAGE_MAX_SECONDS: how long an open circuit waits for Tika before the Job gives up.
    outage_max: float = 600.0


@dataclasses.dataclass(frozen=True)
class ExtractorSettings:
    """Everything the extract stage needs."""

    database: db.DatabaseSettings
    storage: StorageSettings
    tika: TikaSettings
    search_host: str  #: OPENSEARCH_HOST (required)
    search_index: str  #: OPENSEARCH_INDEX (required)
    search_user: str | None  #: OPENSEARCH_USER
    search_password: str | None  #: OPENSEARCH_PASSWORD
    files_endpoint: str | None  #: QUERIDO_DIARIO_FILES_ENDPOINT (required unless relative paths)
    relative_paths: bool  #: USE_RELATIVE_FILE_PATHS (default false, as upstream)
    selection: selection.Selection  #: EXECUTION_MODE, QD_DATE_FROM, QD_DATE_TO, QD_TERRITORIES, QD_RETRY_TERMINAL
    page_size: int  #: GAZETTE_QUERY_PAGE_SIZE: rows per keyset page (default 1000)
    fetch_size: int  #: QD_FETCH_SIZE: rows per round trip of the server-side cursor (default 100)
    max_file_bytes: int  #: MAX_GAZETTE_FILE_SIZE_MB, in MB (default 500)
    max_attempts: int  #: QD_MAX_ATTEMPTS: transient failures after which a gazette is terminal (default 5)
    bulk_max_docs: int  #: QD_BULK_MAX_DOCS: documents per bulk request (default 500; bytes come from the budget)
    #: QD_BULK_CONCURRENCY: bulk requests in flight (default 2); they share the budget's bulk bytes.
    bulk_concurrency: int
    extra_mime_types: frozenset[str]  #: QD_EXTRA_MIME_TYPES: also send these to Tika (default none)
    budget: memory.Budget  #: from MEMORY_LIMIT_BYTES or the cgroup
    budget_source: str
    work_dir: Path  #: QD_WORK_DIR: temp files (an emptyDir in pods; default the system temp dir)
    run_id: str  #: QD_RUN_ID: recorded in the state table (default "manual")
    debug: bool  #: DEBUG=1 for debug logs

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ExtractorSettings:
        import tempfile

        relative = config.env_upstream_flag("USE_RELATIVE_FILE_PATHS", False, on="true", off="false", env=env)
        files_endpoint = config.env_opt("QUERIDO_DIARIO_FILES_ENDPOINT", env=env)
        if not relative and files_endpoint is None:
            raise config.ConfigError("QUERIDO_DIARIO_FILES_ENDPOINT is required unless USE_RELATIVE_FILE_PATHS=true")
        limit, source = memory.detect_limit(env)
        extra = config.env_opt("QD_EXTRA_MIME_TYPES", env=env) or ""
        return cls(
            database=db.DatabaseSettings.from_env(env),
            storage=StorageSettings(
                bucket=config.env_str("STORAGE_BUCKET", env=env),
                region=config.env_str("STORAGE_REGION", "us-east-1", env=env),
                access_key=config.env_opt("STORAGE_ACCESS_KEY", env=env),
                secret_key=config.env_opt("STORAGE_ACCESS_SECRET", env=env),
                endpoint=config.env_opt("STORAGE_ENDPOINT", env=env),
            ),
            tika=TikaSettings(
                url=config.env_str("APACHE_TIKA_SERVER", env=env).rstrip("/"),
                max_retries=config.env_int("TIKA_MAX_RETRIES", 5, minimum=1, env=env),
                retry_base_delay=config.env_float("TIKA_RETRY_BASE_DELAY", 2.0, minimum=0.0, env=env),
                pool_size=config.env_int("TIKA_CONNECTION_POOL_SIZE", 10, minimum=1, env=env),
                chunk_size=config.env_int("TIKA_CHUNK_SIZE", 8192, minimum=512, env=env),
                connect_timeout=config.env_float("QD_TIKA_CONNECT_TIMEOUT", 30.0, minimum=0.1, env=env),
                read_timeout=config.env_float("QD_TIKA_READ_TIMEOUT", 300.0, minimum=0.1, env=env),
                outage_max=config.env_float("QD_TIKA_OUTAGE_MAX_SECONDS", 600.0, minimum=0.0, env=env),
            ),
            search_host=config.env_str("OPENSEARCH_HOST", env=env),
            search_index=config.env_str("OPENSEARCH_INDEX", env=env),
            search_user=config.env_opt("OPENSEARCH_USER", env=env),
            search_password=config.env_opt("OPENSEARCH_PASSWORD", env=env),
            files_endpoint=files_endpoint,
            relative_paths=relative,
            selection=selection.from_env(env),
            page_size=config.env_int("GAZETTE_QUERY_PAGE_SIZE", 1000, minimum=1, maximum=100_000, env=env),
            fetch_size=config.env_int("QD_FETCH_SIZE", 100, minimum=1, maximum=10_000, env=env),
            max_file_bytes=config.env_int("MAX_GAZETTE_FILE_SIZE_MB", 500, minimum=1, env=env) * 1024 * 1024,
            max_attempts=states.max_attempts_from_env(env),
            bulk_max_docs=config.env_int("QD_BULK_MAX_DOCS", 500, minimum=1, maximum=10_000, env=env),
            bulk_concurrency=config.env_int("QD_BULK_CONCURRENCY", 2, minimum=1, maximum=8, env=env),
            extra_mime_types=frozenset(m.strip() for m in extra.split(",") if m.strip()),
            budget=memory.Budget.from_limit(limit),
            budget_source=source,
            work_dir=Path(config.env_str("QD_WORK_DIR", tempfile.gettempdir(), env=env)),
            run_id=config.env_str("QD_RUN_ID", "manual", env=env),
            debug=config.env_upstream_flag("DEBUG", False, on="1", off="0", env=env),
        )
