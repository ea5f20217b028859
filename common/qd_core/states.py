"""The life of a gazette in our own state table: stages, states and error classes.

Upstream has only `gazettes.processed`, so every failure is retried every hour forever. We record
each gazette's fate per stage; a *terminal* error (the file itself is hopeless) is not retried by
later runs unless a run asks for it, a *transient* one (a service hiccup) is.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from qd_core import config


class Stage(enum.StrEnum):
    """A processing stage; each has its own row per gazette."""

    EXTRACT = "extract"  #: S3 → Tika → S3 .txt + gazette index
    EXCERPTS = "excerpts"  #: themed excerpts, embedding rerank, entity tagging


class State(enum.StrEnum):
    """Where a gazette stands in one stage."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    QUARANTINED = "quarantined"  #: OOM-killed on its own at the top memory tier


class ErrorClass(enum.StrEnum):
    """Why a gazette failed. The class, not the message, decides whether it is retried."""

    NOT_FOUND = "not_found"  #: the object is missing from the bucket (404)
    UNSUPPORTED_TYPE = "unsupported_type"  #: zip, html, images, …
    TOO_LARGE = "too_large"  #: over MAX_GAZETTE_FILE_SIZE_MB
    CORRUPT = "corrupt"  #: Tika refused the file (HTTP 422 and similar)
    NO_SEGMENTER = "no_segmenter"  #: an association territory without a segmenter
    UNKNOWN_TERRITORY = "unknown_territory"  #: a segment names a municipality we cannot map
    OOM = "oom"  #: killed for memory at the top tier (quarantine)
    TIKA = "tika"  #: Tika unreachable or failing (transient)
    STORAGE = "storage"  #: S3 errors other than 404 (transient)
    SEARCH = "search"  #: OpenSearch unreachable or overloaded (transient)
    REJECTED = "rejected"  #: OpenSearch refused the document itself (400: mapping, size)
    DATABASE = "database"  #: PostgreSQL errors (transient)
    INTERNAL = "internal"  #: a bug of ours (transient: a fixed release retries it)


#: Errors that describe the file itself: retrying cannot help until the file changes.
TERMINAL: frozenset[ErrorClass] = frozenset({
    ErrorClass.NOT_FOUND, ErrorClass.UNSUPPORTED_TYPE, ErrorClass.TOO_LARGE, ErrorClass.CORRUPT,
    ErrorClass.NO_SEGMENTER, ErrorClass.UNKNOWN_TERRITORY, ErrorClass.OOM, ErrorClass.REJECTED,
})


def is_terminal(error: ErrorClass) -> bool:
    """True when a later run should not retry this failure unless asked to."""
    return error in TERMINAL


def max_attempts_from_env(env: Mapping[str, str] | None = None) -> int:
    """QD_MAX_ATTEMPTS: transient failures after which a gazette counts as terminal (default 5)."""
    return config.env_int("QD_MAX_ATTEMPTS", 5, minimum=1, env=env)


def retry_terminal_from_env(env: Mapping[str, str] | None = None) -> bool:
    """QD_RETRY_TERMINAL: also take gazettes whose failure is terminal (default false)."""
    return config.env_bool("QD_RETRY_TERMINAL", False, env=env)
