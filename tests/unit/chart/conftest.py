"""Fixtures for the chart tests: a pinned Helm binary and a `render` helper.

Helm comes from `QD_HELM` or from `hack/tools/helm.sh` (which builds the pinned HELM_VERSION once
and prints its path). No Helm fails the tests with a message; they are never skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "qd-extractor"
RELEASE = "qd"
NAMESPACE = "qd-system"
#: The least a valid install needs (the chart requires a Secret reference and a database host/name).
MINIMAL = {"database": {"existingSecret": "qd-db", "host": "postgres.db.svc", "name": "queridodiario"}}

Render = Callable[..., list[dict[str, Any]]]


def pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "hack" / "versions.env").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


@pytest.fixture(scope="session")
def helm() -> str:
    """Path of the pinned helm binary."""
    path = os.environ.get("QD_HELM")
    if not path:
        proc = subprocess.run(["bash", str(ROOT / "hack" / "tools" / "helm.sh")], capture_output=True,
                              text=True, check=False, timeout=1200)
        if proc.returncode != 0:
            pytest.fail(f"no helm: set QD_HELM or make hack/tools/helm.sh work ({proc.stderr.strip()[-500:]})",
                        pytrace=False)
        path = proc.stdout.strip().splitlines()[-1]
    if not os.access(path, os.X_OK):
        pytest.fail(f"helm at {path!r} (QD_HELM or hack/tools/helm.sh) is not executable", pytrace=False)
    version = subprocess.run([path, "version", "--short"], capture_output=True, text=True, check=True).stdout
    want = pins()["HELM_VERSION"]
    if not version.startswith(f"v{want}"):
        pytest.fail(f"helm at {path} is {version.strip()}, hack/versions.env pins {want}", pytrace=False)
    return path


@pytest.fixture(scope="session")
def kube_version() -> str:
    """`helm template` assumes Kubernetes v1.20 by default, below the chart's kubeVersion."""
    return pins()["K8S_VERSION"]


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


@pytest.fixture(scope="session")
def helm_template(helm: str, kube_version: str, tmp_path_factory: pytest.TempPathFactory
                  ) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `helm template` with values (a dict, written to a file); returns the process."""
    counter = iter(range(1_000_000))

    def run(values: dict[str, Any], *extra: str, release: str = RELEASE,
            namespace: str = NAMESPACE) -> subprocess.CompletedProcess[str]:
        path = tmp_path_factory.getbasetemp() / f"values-{next(counter)}.json"
        path.write_text(json.dumps(values))
        return subprocess.run([helm, "template", release, str(CHART), "--namespace", namespace,
                               "--kube-version", kube_version, "-f", str(path), *extra],
                              capture_output=True, text=True, check=False, timeout=60)

    return run


@pytest.fixture(scope="session")
def render(helm_template: Callable[..., subprocess.CompletedProcess[str]]) -> Render:
    """Render the chart with MINIMAL merged with `values`; returns the parsed documents."""

    def run(values: dict[str, Any] | None = None, *extra: str, minimal: bool = True, **kw: Any) -> list[dict[str, Any]]:
        proc = helm_template(merge(MINIMAL, values or {}) if minimal else (values or {}), *extra, **kw)
        if proc.returncode != 0:
            pytest.fail(f"helm template failed: {proc.stderr.strip()}", pytrace=False)
        return [d for d in yaml.safe_load_all(proc.stdout) if d]

    return run


@pytest.fixture(scope="session")
def render_error(helm_template: Callable[..., subprocess.CompletedProcess[str]]) -> Callable[..., str]:
    """Render values that must be refused; returns helm's error output."""

    def run(values: dict[str, Any], *, minimal: bool = True) -> str:
        proc = helm_template(merge(MINIMAL, values) if minimal else values)
        assert proc.returncode != 0, f"helm template accepted {values!r}"
        return proc.stderr

    return run

