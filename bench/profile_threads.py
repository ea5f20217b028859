"""Run a module under cProfile in every thread (`python -m cProfile` sees only the main thread).

Usage: python bench/profile_threads.py OUT.prof MODULE [ARGS...]; the stats of all threads are merged
into OUT.prof. Used by `extract_throughput.py --cprofile`, since the extractor is a threaded pipeline.
"""

from __future__ import annotations

import cProfile
import pstats
import runpy
import sys
import threading
from typing import Any

_profiles: list[cProfile.Profile] = []
_original_run = threading.Thread.run


def _profiled_run(self: threading.Thread) -> None:
    profile = cProfile.Profile()
    _profiles.append(profile)
    profile.enable()
    try:
        _original_run(self)
    finally:
        profile.disable()


def main() -> Any:
    out, module, *args = sys.argv[1:]
    threading.Thread.run = _profiled_run  # type: ignore[method-assign]
    sys.argv = [module, *args]
    main_profile = cProfile.Profile()
    main_profile.enable()
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    except SystemExit as exit_:
        return exit_.code
    finally:
        main_profile.disable()
        stats = pstats.Stats(main_profile)
        for profile in _profiles:
            stats.add(profile)
        stats.dump_stats(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
