"""The service scripts: reuse what is up, name a busy port, name a missing toolchain."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

HACK = Path(__file__).resolve().parents[3] / "hack"


def run(script: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(HACK / "services" / script), *args], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})}, check=False)


@pytest.fixture()
def busy_port() -> Iterator[int]:
    """A port on loopback held by a listener that is not one of ours."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.mark.parametrize("script", ["postgres.sh", "minio.sh", "tika.sh", "opensearch.sh"])
def test_second_start_reuses_the_running_service(script: str) -> None:
    before = run(script, "status")
    assert before.returncode == 0, before.stdout + before.stderr
    result = run(script, "start")
    assert result.returncode == 0, result.stderr
    assert "already running" in result.stderr
    assert run(script, "status").returncode == 0


@pytest.mark.parametrize(("script", "var"), [("postgres.sh", "QD_PG_PORT"), ("minio.sh", "QD_S3_PORT"),
                                             ("tika.sh", "QD_TIKA_PORT")])
def test_port_in_use_is_named(script: str, var: str, busy_port: int, tmp_path: Path) -> None:
    # A separate QD_RUN: the script sees no service of its own and must not touch the stranger.
    result = run(script, "start", env={var: str(busy_port), "QD_RUN": str(tmp_path)})
    assert result.returncode == 1
    assert f"port {busy_port}" in result.stderr and var in result.stderr


def test_opensearch_port_outside_runner_range_is_refused(tmp_path: Path) -> None:
    result = run("opensearch.sh", "start", env={"QD_OS_PORT": "19250", "QD_RUN": str(tmp_path)})
    assert result.returncode == 1
    assert "QD_OS_PORT=19250" in result.stderr


def test_missing_go_toolchain_is_named(tmp_path: Path) -> None:
    # An empty cache forces a build; a PATH without Go makes it impossible.
    env = {"QD_CACHE": str(tmp_path / "cache"), "QD_RUN": str(tmp_path / "run"), "PATH": "/usr/bin:/bin"}
    result = run("minio.sh", "start", env=env)
    assert result.returncode == 1
    assert "'go' not found" in result.stderr and "Go toolchain" in result.stderr


def test_stop_only_touches_recorded_pids(tmp_path: Path) -> None:
    # With nothing recorded in this QD_RUN, stop is a no-op and the real services stay up.
    result = run("tika.sh", "stop", env={"QD_RUN": str(tmp_path)})
    assert result.returncode == 0
    assert run("tika.sh", "status").returncode == 0
