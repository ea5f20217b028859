"""Extract pods never import torch: the model stack belongs to the excerpt stage's own process.

Importing torch costs hundreds of MiB of RSS and seconds of start-up, which the extract stage's
small memory tiers cannot afford (upstream imported it in the same process). The test runs the
real CLI on one gazette under `python -X importtime`, which reports every module the process
imported, from any thread, on stderr.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from qd_devtools import fixtures as fx

pytestmark = pytest.mark.integration

FORBIDDEN = ("torch", "transformers", "sentence_transformers")
#: Modules of the extract path: the importtime output must name them, or it is not the real run.
EXTRACT_PATH = ("qd_extractor.cli", "qd_extractor.app", "qd_extractor.runner", "qd_extractor.pipeline",
                "qd_extractor.extract", "qd_extractor.tika", "qd_extractor.storage", "qd_extractor.search.bulk",
                "qd_extractor.search.client", "qd_extractor.search.documents", "qd_extractor.search.mappings")


def imported_modules(stderr: str) -> set[str]:
    """Module names from `-X importtime` lines: `import time: <self> | <cumulative> | <indented name>`."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":  # the header line
                names.add(name)
    return names


def test_extract_cli_never_imports_the_model_stack(world) -> None:  # type: ignore[no-untyped-def]
    (gazette,) = world.load([fx.text_pdf(seed=71)])  # a PDF: the Tika path, the one with most imports
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "qd_extractor", "extract",
                             "--range", f"{gazette.id}:{gazette.id}"],
                            capture_output=True, text=True, timeout=120, env=world.env(), check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert world.states()[gazette.id][0] == "succeeded"  # the whole stage ran, indexing included
    modules = imported_modules(result.stderr)
    missing = [m for m in EXTRACT_PATH if m not in modules]
    assert not missing, f"importtime output lacks {missing}: the parse or the run is wrong"
    loaded = sorted(m for m in modules if m.split(".")[0] in FORBIDDEN)
    assert loaded == [], f"the extract stage imported {loaded[:10]}"
