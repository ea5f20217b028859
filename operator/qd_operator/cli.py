"""`qd-operator`: run the kopf operator (standalone: one replica, no peering)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from qd_core import config


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="qd-operator", description="The ExtractionRun operator.")
    parser.add_argument("--liveness", default="http://0.0.0.0:8081/healthz",
                        help="kopf liveness endpoint (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    from qd_operator import handlers

    try:
        ours = handlers.settings()
    except config.ConfigError as err:
        print(f"qd-operator: configuration error: {err}", file=sys.stderr)
        return 2
    import kopf

    kopf.configure(verbose=args.verbose)
    kopf.run(standalone=True, clusterwide=not ours.namespaces, namespaces=list(ours.namespaces),
             liveness_endpoint=args.liveness)
    return 0


if __name__ == "__main__":
    sys.exit(main())
