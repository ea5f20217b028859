"""Operator settings, from the environment (the chart sets them); errors name the variable."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from qd_core import config, db
from qd_operator import spec


@dataclasses.dataclass(frozen=True)
class OperatorSettings:
    database: db.DatabaseSettings  #: POSTGRES_HOST/PORT/DB/USER/PASSWORD (our tables live there too)
    #: QD_JOB_SERVICE_ACCOUNT: the Job pods' service account (no API token is mounted).
    job_service_account: str
    #: QD_DEFAULT_IMAGE (repository:tag) and QD_DEFAULT_IMAGE_PULL_POLICY: used when a run names none.
    default_image: spec.Image
    #: QD_RECONCILE_SECONDS: how often a run is reconciled without events (default 5 s).
    reconcile_seconds: float
    #: QD_JOB_TTL_SECONDS: ttlSecondsAfterFinished of the Jobs (default unset: kept until the run goes).
    job_ttl_seconds: int | None
    #: QD_METRICS_PORT: Prometheus /metrics (default 8080; 0 disables).
    metrics_port: int
    #: QD_WATCH_NAMESPACES: comma-separated namespaces; empty = cluster-wide.
    namespaces: tuple[str, ...]
    #: QD_DB_POOL_SIZE: PostgreSQL connections shared by all runs' reconcile passes (default 4).
    db_pool_size: int = 4

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> OperatorSettings:
        image = config.env_str("QD_DEFAULT_IMAGE", "localhost/qd-extractor:0.1.0", env=env)
        repository, _, tag = image.rpartition(":")
        if not repository or "/" in tag:
            raise config.ConfigError(f"QD_DEFAULT_IMAGE={image!r} is not repository:tag")
        ttl = config.env_opt("QD_JOB_TTL_SECONDS", env=env)
        namespaces = config.env_opt("QD_WATCH_NAMESPACES", env=env) or ""
        return cls(
            database=db.DatabaseSettings.from_env(env),
            job_service_account=config.env_str("QD_JOB_SERVICE_ACCOUNT", "qd-extractor-job", env=env),
            default_image=spec.Image(repository=repository, tag=tag, pull_policy=config.env_str(
                "QD_DEFAULT_IMAGE_PULL_POLICY", "IfNotPresent", env=env)),
            reconcile_seconds=config.env_float("QD_RECONCILE_SECONDS", 5.0, minimum=0.2, env=env),
            job_ttl_seconds=None if ttl is None else config.env_int("QD_JOB_TTL_SECONDS", 0, minimum=0, env=env),
            metrics_port=config.env_int("QD_METRICS_PORT", 8080, minimum=0, maximum=65535, env=env),
            namespaces=tuple(n.strip() for n in namespaces.split(",") if n.strip()),
            db_pool_size=config.env_int("QD_DB_POOL_SIZE", 4, minimum=1, maximum=64, env=env),
        )
