"""Faults during a range: Tika restarts, SIGTERM, a document OpenSearch refuses. Nothing is lost."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from qd_devtools import fixtures as fx
from qd_extractor.search import mappings

pytestmark = pytest.mark.integration

HACK = Path(__file__).resolve().parents[3] / "hack"


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def succeeded(world) -> int:  # type: ignore[no-untyped-def]
    return sum(1 for s in world.states().values() if s[0] == "succeeded")


def start(world, log: Path, **extra: str) -> subprocess.Popen[bytes]:  # type: ignore[no-untyped-def]
    """Run the CLI with its JSON log lines going to a file the test can read while it runs."""
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "qd_extractor", "extract"], env=world.env(**extra),
                                stdout=out, stderr=subprocess.STDOUT)


def slow_batch(tmp_path: Path, n: int) -> list[fx.Fixture]:
    """PDFs big enough (~3 MB) that Tika needs a noticeable time for each."""
    return [fx.big_pdf(tmp_path / f"b{i}.pdf", size_mb=3, seed=100 + i) for i in range(n)]


def test_tika_stop_and_restart_loses_nothing(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    loaded = world.load(slow_batch(tmp_path, 30))
    log = tmp_path / "extract.log"
    proc = start(world, log, QD_TIKA_OUTAGE_MAX_SECONDS="180")
    try:
        wait_for(lambda: succeeded(world) >= 1, 120, "the first gazette to succeed")
        subprocess.run(["bash", str(HACK / "services" / "tika.sh"), "stop"], check=True, capture_output=True)
        wait_for(lambda: proc.poll() is not None or '"circuit_breaker"' in log.read_text(), 60,
                 "the extractor to notice the outage")
        subprocess.run(["bash", str(HACK / "services" / "tika.sh"), "start"], check=True, capture_output=True)
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
        subprocess.run(["bash", str(HACK / "services" / "tika.sh"), "start"], check=False, capture_output=True)
    out = log.read_text()
    assert proc.returncode == 0, out[-2000:]
    states = world.states()
    assert [states[g.id][0] for g in loaded] == ["succeeded"] * len(loaded)
    assert all(s[1] is None for s in states.values())
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    circuit = [e["state"] for e in events if e.get("event_type") == "circuit_breaker"]
    assert circuit[:1] == ["open"] and circuit[-1] == "closed"


def test_sigterm_puts_in_flight_gazettes_back_to_pending(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    loaded = world.load(slow_batch(tmp_path, 6))
    # One document per bulk request, so gazettes settle one by one while the range runs.
    proc = start(world, tmp_path / "extract.log", QD_BULK_MAX_DOCS="1")
    wait_for(lambda: succeeded(world) >= 2, 120, "two gazettes to succeed")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == 143
    with world.conn.cursor() as cur:
        cur.execute("SELECT state, attempts FROM qd_gazette_state")
        rows = cur.fetchall()
    assert ("running",) not in {(r[0],) for r in rows}
    assert all(state in ("succeeded", "pending") for state, _ in rows)
    assert all(attempts == 0 for state, attempts in rows if state == "pending")
    # A second run finishes the range; no attempt was burned by the interruption.
    assert world.run("extract").returncode == 0
    with world.conn.cursor() as cur:
        cur.execute("SELECT state, attempts FROM qd_gazette_state")
        assert sorted(cur.fetchall()) == [("succeeded", 1)] * len(loaded)


def test_document_rejected_by_opensearch_is_recorded_and_the_rest_indexed(world) -> None:  # type: ignore[no-untyped-def]
    # A real refusal: an index created beforehand with `edition_number` mapped as an integer (a
    # mis-created index, like upstream's init-script one) refuses the editions that are not numbers.
    body = mappings.gazette_index_body()
    body["mappings"]["properties"]["edition_number"] = {"type": "integer"}
    requests.put(f"{world.opensearch}/{world.index}", json=body, timeout=30).raise_for_status()
    items = [fx.text_pdf(seed=s) for s in range(20, 30)]
    loaded = world.load(items)
    with world.conn.cursor() as cur:
        cur.execute("UPDATE gazettes SET edition_number = '12' WHERE id = ANY(%s)", ([g.id for g in loaded],))
        cur.execute("UPDATE gazettes SET edition_number = '12-A extra' WHERE id = ANY(%s)",
                    ([loaded[0].id, loaded[1].id],))
    result = world.run("extract")
    assert result.returncode == 0, result.stderr[-2000:]
    states = world.states()
    for g in loaded[:2]:
        assert states[g.id] == ("failed", "rejected", True), states[g.id]
        assert world.processed()[g.id] is False
    assert all(states[g.id][0] == "succeeded" for g in loaded[2:]), [states[g.id] for g in loaded]
    assert world.count() == len(loaded) - 2
    with world.conn.cursor() as cur:
        cur.execute("SELECT error_message FROM qd_gazette_state WHERE gazette_id = %s", (loaded[0].id,))
        assert "mapper_parsing_exception" in cur.fetchone()[0]


def test_bad_configuration_exits_2_naming_the_variable(world) -> None:  # type: ignore[no-untyped-def]
    env = world.env(EXECUTION_MODE="WEEKLY")
    result = subprocess.run([sys.executable, "-m", "qd_extractor", "extract"], env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "EXECUTION_MODE" in result.stderr
    env = {k: v for k, v in world.env().items() if k != "APACHE_TIKA_SERVER"}
    result = subprocess.run([sys.executable, "-m", "qd_extractor", "extract"], env=env, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 2 and "APACHE_TIKA_SERVER is required" in result.stderr


def test_database_unreachable_exits_3(world) -> None:  # type: ignore[no-untyped-def]
    # A closed loopback port: connection refused, retried with backoff, then the infrastructure code.
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    env = world.env(POSTGRES_PORT=str(port))
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "qd_extractor", "extract"], env=env, capture_output=True,
                            text=True, timeout=180, check=False)
    assert result.returncode == 3, result.stderr[-2000:]
    assert time.monotonic() - started > 1  # it retried before giving up
    assert os.environ.get("POSTGRES_PORT") != str(port)


def test_sigterm_before_any_acknowledgement_leaves_nothing_succeeded(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Texts are uploaded but no bulk request was sent yet: no gazette may count as done."""
    loaded = world.load(slow_batch(tmp_path, 6))
    log = tmp_path / "extract.log"
    proc = start(world, log, QD_BULK_MAX_DOCS="1000")  # the only bulk request would come at the end
    wait_for(lambda: log.read_text().count('"tika_response"') >= 2, 120, "two texts extracted")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    assert proc.returncode == 143, log.read_text()[-2000:]
    with world.conn.cursor() as cur:
        cur.execute("SELECT state, attempts FROM qd_gazette_state")
        rows = cur.fetchall()
    # The pipeline had claimed ahead: every claimed gazette is back to pending, none burned an attempt.
    assert len(rows) >= 3 and set(rows) == {("pending", 0)}
    assert not any(world.processed().values())
    assert world.count() == 0
    assert world.run("extract").returncode == 0
    assert [world.states()[g.id][0] for g in loaded] == ["succeeded"] * len(loaded)
