"""kopf registrations: the run daemons, the Job index that feeds them, start-up settings.

Each ExtractionRun gets a daemon thread that reconciles it every QD_RECONCILE_SECONDS and at once
when one of its Jobs changes (the Job watch only wakes the daemon; the Jobs themselves are read
from a kopf index, never from per-Job annotations).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import kopf
import psycopg2

from qd_core import db
from qd_operator import dbpool, kube, metrics, model, planning, reconcile
from qd_operator.settings import OperatorSettings

_settings: OperatorSettings | None = None
_pool: dbpool.ConnectionPool | None = None
_wakers: dict[str, threading.Event] = {}
_lock = threading.Lock()


def settings() -> OperatorSettings:
    global _settings  # noqa: PLW0603 - read once at start-up, shared by all daemons
    if _settings is None:
        _settings = OperatorSettings.from_env()
    return _settings


def pool() -> dbpool.ConnectionPool:
    """The connections every daemon borrows from, QD_DB_POOL_SIZE at most (made at start-up)."""
    global _pool  # noqa: PLW0603 - one pool per operator start, closed at cleanup
    with _lock:
        if _pool is None:
            ours = settings()
            _pool = dbpool.ConnectionPool(lambda: ours.database.connect("qd-operator"), ours.db_pool_size)
        return _pool


def _waker(uid: str) -> threading.Event:
    with _lock:
        return _wakers.setdefault(uid, threading.Event())


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, logger: kopf.Logger, **_: Any) -> None:
    """Our own finalizer and annotation prefix; posting of Events at INFO; metrics; migrations."""
    ours = globals()["settings"]()
    import kubernetes

    try:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()  # type: ignore[no-untyped-call]
    settings.persistence.finalizer = f"{model.GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=model.GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=model.GROUP)
    settings.posting.level = logging.INFO
    settings.watching.server_timeout = 300
    # Namespaced mode (the chart's Role) grants no namespace or CRD listing: do not scan, or kopf
    # retries the refused lists for about a minute before it starts.
    settings.scanning.disabled = bool(ours.namespaces)
    _close_pool()  # a new start (the tests restart the operator in-process) gets a pool of its settings
    pool()
    conn = ours.database.connect("qd-operator-migrate")
    try:
        applied = db.migrate(conn)
    finally:
        conn.close()
    logger.info("migrations applied: %s", applied or "none needed")
    metrics.serve(ours.metrics_port)


@kopf.index("batch", "v1", "jobs", labels={model.LABEL_RUN_UID: kopf.PRESENT})
def jobs_by_run(labels: kopf.Labels, body: kopf.Body, **_: Any) -> dict[str, model.ChildJob]:
    """Run uid → its Jobs, as last seen: only what the reconciler reads (model.ChildJob), not the body."""
    return {str(labels[model.LABEL_RUN_UID]): model.child_job(body)}


@kopf.on.event("batch", "v1", "jobs", labels={model.LABEL_RUN_UID: kopf.PRESENT})
def job_changed(labels: kopf.Labels, **_: Any) -> None:
    """Wake the run's daemon so it reacts at once instead of at its next tick."""
    _waker(str(labels[model.LABEL_RUN_UID])).set()


@kopf.daemon(model.GROUP, model.VERSION, model.PLURAL, cancellation_timeout=30.0)
def run_daemon(stopped: kopf.DaemonStopped, body: kopf.Body, uid: str, logger: kopf.Logger, **kwargs: Any) -> None:
    """Reconcile one run until it is deleted (or the operator stops)."""
    jobs_by_run: kopf.Index[str, model.ChildJob] = kwargs["jobs_by_run"]  # kopf passes indexes by name
    ours = settings()
    wake = _waker(uid)
    cluster = kube.Cluster()
    last_status: dict[str, Any] | None = None

    def post(reason: str, message: str, warning: bool) -> None:
        kopf.event(body, type="Warning" if warning else "Normal", reason=reason, message=message)

    def adopt(manifest: dict[str, Any]) -> None:
        kopf.adopt(manifest, owner=body, strict=True)

    while not stopped:
        try:
            with pool().borrow(timeout_s=max(30.0, ours.reconcile_seconds)) as conn:
                reconciler = reconcile.Reconciler(ours, conn, cluster, post, adopt, logger)
                last_status = reconciler.run(dict(body), list(jobs_by_run.get(uid, [])), last_status)
        except psycopg2.Error as err:
            logger.warning("database unavailable, retrying: %s", err)
        except dbpool.PoolTimeout as err:
            logger.warning("%s (QD_DB_POOL_SIZE=%d); retrying", err, ours.db_pool_size)
        except Exception:  # keep the run alive: the next tick retries from the truth
            logger.exception("reconcile failed; retrying")
        wake.wait(ours.reconcile_seconds)
        wake.clear()
        if stopped:
            break
    with _lock:
        _wakers.pop(uid, None)


@kopf.on.delete(model.GROUP, model.VERSION, model.PLURAL, optional=True)
def run_deleted(uid: str, logger: kopf.Logger, **_: Any) -> None:
    """Mark the run finished in our tables; never blocks deletion (Jobs go by owner references)."""
    metrics.forget_run(uid)
    try:
        conn = settings().database.connect("qd-operator-delete")
        try:
            planning.finish_run(conn, uid, model.RunState.DELETED)
        finally:
            conn.close()
    except psycopg2.Error as err:
        logger.warning("could not mark run %s deleted in the database: %s", uid, err)


@kopf.on.cleanup()
def close_connections(**_: Any) -> None:
    """Close the pool's idle connections when the operator stops."""
    _close_pool()


def _close_pool() -> None:
    global _pool
    with _lock:
        old, _pool = _pool, None
    if old is not None:
        old.close()
