"""`qd-extract` / `python -m qd_extractor`: what every Job pod runs.

Exit codes (the operator's podFailurePolicy relies on them):

* 0   the range is done — including gazettes whose failure was recorded in the state table;
* 2   bad configuration or usage (the message names the variable or flag);
* 3   a service is unavailable beyond retries (PostgreSQL, S3, OpenSearch, or Tika past
      QD_TIKA_OUTAGE_MAX_SECONDS); gazettes in flight were put back to pending;
* 143 stopped by SIGTERM; gazettes in flight were put back to pending;
* 137 is never ours: it means the kernel killed the pod for memory (OOMKilled).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

from qd_core import config

EXIT_OK = 0
EXIT_CONFIG = 2
EXIT_INFRA = 3
EXIT_TERMINATED = 143


def parse_range(value: str) -> tuple[int, int]:
    """`LOW:HIGH`, inclusive gazette ids."""
    try:
        low_s, high_s = value.split(":")
        low, high = int(low_s), int(high_s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"range {value!r} is not LOW:HIGH (two gazette ids)") from None
    if low > high:
        raise argparse.ArgumentTypeError(f"range {value!r} is empty: LOW is above HIGH")
    return low, high


def pick_range(explicit: tuple[int, int] | None) -> tuple[int, int]:
    """The range to work on: --range, else QD_RANGES[JOB_COMPLETION_INDEX] (Indexed Jobs), else all ids."""
    if explicit is not None:
        return explicit
    ranges = config.env_opt("QD_RANGES")
    if ranges is None:
        return 0, 2**31 - 1
    items = [r for r in ranges.split(",") if r.strip()]
    index = config.env_int("JOB_COMPLETION_INDEX", 0, minimum=0, maximum=max(0, len(items) - 1))
    try:
        return parse_range(items[index].strip())
    except argparse.ArgumentTypeError as err:
        raise config.ConfigError(f"QD_RANGES: {err}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qd-extract", description="Querido Diário streaming extractor (one id range per invocation).",
        epilog="Settings come from upstream's environment variables (POSTGRES_*, STORAGE_*, APACHE_TIKA_SERVER, "
               "OPENSEARCH_*, EXECUTION_MODE, …); see README. Exit codes: 0 done, 2 bad configuration, "
               "3 service unavailable, 143 SIGTERM.")
    sub = parser.add_subparsers(dest="command", required=True)
    extract = sub.add_parser("extract", help="S3 → Tika → S3 .txt + OpenSearch for a range of gazettes")
    extract.add_argument("--range", type=parse_range, default=None, metavar="LOW:HIGH",
                         help="inclusive gazette id range (default: QD_RANGES[JOB_COMPLETION_INDEX], else all)")
    excerpts = sub.add_parser("excerpts", help="themed excerpts, embedding rerank and entity tags for a range "
                                               "(its own process: only this stage imports torch)")
    excerpts.add_argument("--range", type=parse_range, default=None, metavar="LOW:HIGH",
                          help="inclusive gazette id range (default: QD_RANGES[JOB_COMPLETION_INDEX], else all)")
    sub.add_parser("rerank-repair", help="score excerpts that have no embedding score (upstream's "
                                         "embedding_rerank pipeline)")
    sub.add_parser("migrate", help="apply our state-table migrations and exit")
    return parser


class _Terminated(BaseException):
    """Raised from the SIGTERM handler; a BaseException so gazette-level handlers never swallow it."""


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command in ("excerpts", "rerank-repair"):
        from qd_extractor.excerpts import app as excerpts

        def second(settings: Any, log: logging.Logger) -> None:
            if args.command == "rerank-repair":
                excerpts.run_rerank_repair(settings, log)
            else:
                excerpts.run_excerpts(settings, *pick_range(args.range), log)

        return _guarded(excerpts.ExcerptSettings.from_env, second, excerpts.INFRASTRUCTURE_ERRORS,
                        "qd_extractor.excerpts")
    from qd_extractor import app

    def first(settings: Any, log: logging.Logger) -> None:
        if args.command == "migrate":
            app.migrate(settings)
        else:
            app.run_extract(settings, *pick_range(args.range), log)

    return _guarded(app.load_settings, first, app.INFRASTRUCTURE_ERRORS, "qd_extractor")


def _guarded(load: Callable[[], Any], work: Callable[[Any, logging.Logger], None],
             infrastructure: tuple[type[BaseException], ...], logger_name: str) -> int:
    """Settings, logging and SIGTERM set up once; every way out mapped to its documented exit code.

    The excerpt stage comes through here too, importing torch only inside `work`.
    """
    from qd_extractor import logs

    try:
        settings = load()
    except config.ConfigError as err:
        print(f"qd-extract: configuration error: {err}", file=sys.stderr)
        return EXIT_CONFIG
    logs.setup(settings.debug)
    log = logging.getLogger(logger_name)
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        work(settings, log)
        return EXIT_OK
    except config.ConfigError as err:
        print(f"qd-extract: configuration error: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except _Terminated:
        log.warning("SIGTERM: in-flight gazettes were put back to pending", extra={"event_type": "shutdown"})
        return EXIT_TERMINATED
    except infrastructure as err:
        log.error("service unavailable: %s", err, extra={"event_type": "infrastructure_error",
                                                          "error_type": type(err).__name__})
        return EXIT_INFRA


if __name__ == "__main__":
    sys.exit(main())
