"""Wiring for the excerpts stage and the rerank repair: settings → connections → stage.

Entry points for the CLI (`qd-extract excerpts --range LOW:HIGH`, `qd-extract rerank-repair`):
`ExcerptSettings.from_env()`, `run_excerpts(settings, low, high, logger)` and
`run_rerank_repair(settings, logger)`. Bad settings raise `qd_core.config.ConfigError` naming the
variable (or the themes file and key); an unreachable service raises one of `INFRASTRUCTURE_ERRORS`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from pathlib import Path

import psycopg2
import psycopg2.extensions
from opensearchpy import OpenSearch

from qd_core import config, db, states
from qd_extractor import logs, memory
from qd_extractor.excerpts import rerank, themes
from qd_extractor.excerpts.stage import ExcerptStage, ExcerptSummary, StageOptions
from qd_extractor.excerpts.writes import TrackedWriter
from qd_extractor.search.bulk import BulkWriter, SearchUnavailableError
from qd_extractor.search.client import SearchSettings, make_client

#: Errors that mean "a service is down": the CLI should exit with its infrastructure code on them.
INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (
    psycopg2.OperationalError, psycopg2.InterfaceError, SearchUnavailableError,
)
#: Most actions per `_bulk` request (the byte bound comes from the memory budget).
BULK_MAX_DOCS = 500


@dataclasses.dataclass(frozen=True)
class ExcerptSettings:
    """Everything the excerpts stage and the repair need; each field names its variable."""

    database: db.DatabaseSettings  #: POSTGRES_HOST/PORT/DB/USER/PASSWORD (required; the repair does not use them)
    search: SearchSettings  #: OPENSEARCH_HOST, OPENSEARCH_INDEX (required), OPENSEARCH_USER, OPENSEARCH_PASSWORD
    themes_path: Path  #: QD_THEMES_CONFIG: themes file (default: the shipped copy of upstream's)
    themes: tuple[themes.Theme, ...]  #: read and validated from `themes_path` at start-up
    rerank_model: str  #: QD_RERANK_MODEL: model directory (default $HOME/models/bert-base-portuguese-cased)
    rerank_batch_size: int  #: QD_RERANK_BATCH_SIZE: excerpts per encode batch (default 32)
    #: QD_RERANK_THREADS: torch threads (default 0 = the pod's CPU limit; 0 here = torch's default) and their source
    rerank_threads: tuple[int, str]
    run_id: str  #: QD_RUN_ID: recorded in the state table (default "manual")
    gazette_page: int  #: QD_EXCERPT_GAZETTE_PAGE: gazettes claimed per round (default 250)
    search_batch: int  #: QD_EXCERPT_SEARCH_BATCH: gazette document ids per themed search (default 250, upstream)
    search_page: int  #: QD_EXCERPT_SEARCH_PAGE: hits per query per themed `_msearch` round (default 50)
    id_batch: int  #: QD_EXCERPT_ID_BATCH: excerpt ids per fetch / entity search (default 250)
    repair_page: int  #: QD_RERANK_REPAIR_PAGE: unscored excerpt ids per repair page (default 1000, upstream)
    max_attempts: int  #: QD_MAX_ATTEMPTS: transient failures after which a gazette is terminal (default 5)
    retry_terminal: bool  #: QD_RETRY_TERMINAL: also redo gazettes whose excerpts failed for good (default false)
    bulk_bytes: int  #: bytes per `_bulk` request: memory limit / 24, 1–20 MiB (MEMORY_LIMIT_BYTES or cgroup)
    debug: bool  #: DEBUG=1 for debug logs

    def scorer(self) -> rerank.EmbeddingScorer:
        """The embedding scorer these settings describe (the model loads at its first use)."""
        return rerank.EmbeddingScorer(self.rerank_model, self.rerank_batch_size, *self.rerank_threads)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ExcerptSettings:
        themes_path = themes.config_path(env)
        model = config.env_str("QD_RERANK_MODEL", rerank.default_model_path(env), env=env)
        if not Path(model).is_dir():
            raise config.ConfigError(f"QD_RERANK_MODEL={model}: no model directory there (upstream bakes it at "
                                     f"$HOME/{rerank.MODEL_SUBPATH})")
        limit, _ = memory.detect_limit(env)
        return cls(
            database=db.DatabaseSettings.from_env(env),
            search=SearchSettings(host=config.env_str("OPENSEARCH_HOST", env=env),
                                  index=config.env_str("OPENSEARCH_INDEX", env=env),
                                  user=config.env_opt("OPENSEARCH_USER", env=env),
                                  password=config.env_opt("OPENSEARCH_PASSWORD", env=env)),
            themes_path=themes_path,
            themes=themes.load_themes(themes_path),
            rerank_model=model,
            rerank_batch_size=config.env_int("QD_RERANK_BATCH_SIZE", 32, minimum=1, maximum=4096, env=env),
            rerank_threads=_threads(env),
            run_id=config.env_str("QD_RUN_ID", "manual", env=env),
            gazette_page=config.env_int("QD_EXCERPT_GAZETTE_PAGE", 250, minimum=1, maximum=10_000, env=env),
            search_batch=config.env_int("QD_EXCERPT_SEARCH_BATCH", 250, minimum=1, maximum=10_000, env=env),
            search_page=config.env_int("QD_EXCERPT_SEARCH_PAGE", 50, minimum=1, maximum=1000, env=env),
            id_batch=config.env_int("QD_EXCERPT_ID_BATCH", 250, minimum=1, maximum=10_000, env=env),
            repair_page=config.env_int("QD_RERANK_REPAIR_PAGE", 1000, minimum=1, maximum=10_000, env=env),
            max_attempts=states.max_attempts_from_env(env),
            retry_terminal=states.retry_terminal_from_env(env),
            bulk_bytes=memory.Budget.from_limit(limit).bulk_bytes,
            debug=config.env_upstream_flag("DEBUG", False, on="1", off="0", env=env),
        )

    def options(self) -> StageOptions:
        return StageOptions(gazette_index=self.search.index, run_id=self.run_id, gazette_page=self.gazette_page,
                            search_batch=self.search_batch, search_page=self.search_page, id_batch=self.id_batch,
                            max_attempts=self.max_attempts, retry_terminal=self.retry_terminal)


def _threads(env: Mapping[str, str] | None) -> tuple[int, str]:
    """Read at start-up, so a bad QD_RERANK_THREADS stops the process before any connection."""
    threads, source = rerank.rerank_threads(env)
    return threads or 0, source


def _writer(settings: ExcerptSettings, client: OpenSearch, logger: logging.Logger) -> BulkWriter:
    return BulkWriter(client, max_bytes=settings.bulk_bytes, max_docs=BULK_MAX_DOCS, max_retries=5,
                      backoff_base_s=1.0, logger=logger)


def run_excerpts(settings: ExcerptSettings, low: int, high: int, logger: logging.Logger, *,
                 search: OpenSearch | None = None, scorer: rerank.Scorer | None = None) -> ExcerptSummary:
    """Run the excerpts stage over gazette ids [low, high] (`search`/`scorer` are for tests)."""
    logs.event(logger, "startup", "excerpts stage starting", low=low, high=high, run_id=settings.run_id,
               themes=[t.index for t in settings.themes], themes_config=str(settings.themes_path),
               rerank_model=settings.rerank_model)
    conn = settings.database.connect_with_retries("qd-excerpts")
    try:
        db.migrate(conn)
        client = search or make_client(settings.search)
        scorer = scorer or settings.scorer()
        stage = ExcerptStage(conn, client, _writer(settings, client, logger), settings.themes, scorer,
                             settings.options(), logger)
        return stage.run(low, high)
    finally:
        conn.close()


def run_rerank_repair(settings: ExcerptSettings, logger: logging.Logger, *, search: OpenSearch | None = None,
                      scorer: rerank.Scorer | None = None) -> dict[str, int]:
    """Upstream's `embedding_rerank` pipeline: score every unscored excerpt; return scored counts per index."""
    client = search or make_client(settings.search)
    scorer = scorer or settings.scorer()
    writer = TrackedWriter(_writer(settings, client, logger), client)
    scored: dict[str, int] = {}
    failed = 0
    for theme in settings.themes:
        scored[theme.index] = rerank.repair_theme(client, writer, scorer, theme, page_size=settings.repair_page,
                                                  id_batch=settings.id_batch)
        writer.flush()
        failed += len(writer.take_failed())
    logs.event(logger, logs.RANGE_SUMMARY, "rerank repair finished", scored=scored, failed=failed)
    return scored
