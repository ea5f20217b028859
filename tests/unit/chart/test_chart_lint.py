"""`helm lint --strict`, the CRD copy and the generated values table."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "qd-extractor"


@pytest.mark.parametrize("values", [None, *sorted(p.name for p in (CHART / "ci").glob("*.yaml"))])
def test_helm_lint_strict(helm, values):
    extra = ["-f", str(CHART / "ci" / values)] if values else []
    proc = subprocess.run([helm, "lint", "--strict", str(CHART), *extra], capture_output=True, text=True,
                          check=False, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[WARNING]" not in proc.stdout and "[ERROR]" not in proc.stdout, proc.stdout


def test_chart_crd_is_the_canonical_crd():
    """Helm installs the chart's copy; hack/chart-sync.sh makes it from crds/extractionrun.yaml."""
    canonical = (ROOT / "crds" / "extractionrun.yaml").read_bytes()
    copy = (CHART / "crds" / "extractionrun.yaml").read_bytes()
    assert copy == canonical, "charts/qd-extractor/crds/extractionrun.yaml drifted: run hack/chart-sync.sh"
    assert [p.name for p in (CHART / "crds").iterdir()] == ["extractionrun.yaml"]


def test_chart_sync_check_passes():
    """The CRD copy and README's values table are up to date, and every value has a `# --` comment."""
    proc = subprocess.run(["bash", str(ROOT / "hack" / "chart-sync.sh"), "--check"], capture_output=True,
                          text=True, check=False, timeout=60, env={**os.environ, "PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stderr


def test_chart_sync_check_notices_drift(tmp_path):
    """Run the script on a copy of the tree with a changed CRD and an undocumented value."""
    (tmp_path / "hack").mkdir()
    (tmp_path / "hack" / "chart-sync.sh").write_bytes((ROOT / "hack" / "chart-sync.sh").read_bytes())
    (tmp_path / "crds").mkdir()
    (tmp_path / "crds" / "extractionrun.yaml").write_text((ROOT / "crds" / "extractionrun.yaml").read_text() + "#\n")
    chart = tmp_path / "charts" / "qd-extractor"
    (chart / "crds").mkdir(parents=True)
    (chart / "crds" / "extractionrun.yaml").write_bytes((CHART / "crds" / "extractionrun.yaml").read_bytes())
    (chart / "README.md").write_bytes((CHART / "README.md").read_bytes())
    (chart / "values.yaml").write_text((CHART / "values.yaml").read_text() + "undocumented: 1\n")
    env = {**os.environ, "PYTHON": sys.executable}
    script = str(tmp_path / "hack" / "chart-sync.sh")
    proc = subprocess.run(["bash", script, "--check"], capture_output=True, text=True, check=False, env=env)
    assert proc.returncode == 1
    assert "crds/extractionrun.yaml differs" in proc.stderr
    assert "undocumented has no `# --` comment" in proc.stderr
    # Writing mode copies the CRD and regenerates the table; the undocumented value still fails.
    proc = subprocess.run(["bash", script], capture_output=True, text=True, check=False, env=env)
    assert proc.returncode == 1
    canonical = (tmp_path / "crds" / "extractionrun.yaml").read_bytes()
    assert (chart / "crds" / "extractionrun.yaml").read_bytes() == canonical
    assert "| undocumented |" not in (chart / "README.md").read_text()


def test_chart_metadata():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == "0.1.0"
    assert chart["annotations"]["artifacthub.io/license"] == "MIT"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{chart["appVersion"]}"' in pyproject


def test_packaged_chart_leaves_ci_values_out(helm, tmp_path):
    proc = subprocess.run([helm, "package", str(CHART), "-d", str(tmp_path)], capture_output=True, text=True,
                          check=False, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (archive,) = tmp_path.glob("*.tgz")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "qd-extractor/crds/extractionrun.yaml" in names
    assert "qd-extractor/values.schema.json" in names
    assert not [n for n in names if "/ci/" in n]
