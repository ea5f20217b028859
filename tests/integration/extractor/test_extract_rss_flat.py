"""The extract stage's peak RSS stays flat as files grow: texts stream through temp files.

bench/extract_rss.py measures this up to 1 GB; this test keeps the claim under the test command with
two plain-text gazettes (read locally, no Tika, so it takes seconds): ~1 MB and ~64 MB, each
extracted by its own child process whose peak RSS is the kernel's ru_maxrss from wait4().
"""

from __future__ import annotations

import dataclasses
import os
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path

import pytest

from qd_devtools import fixtures as fx
from qd_devtools.text import line_pool
from qd_extractor import storage

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
#: 32 MiB: the index cap is its 1 MiB floor, below both files, so the two index documents are the
#: same size and nothing but streaming separates the runs. (At 256 MiB the cap is 8 MiB, and a 1 MB
#: file against a 64 MB one would also compare a 1 MB with an 8 MiB document: +54 MiB measured,
#: by design, since the document is serialised in several copies.)
LIMIT = 32 * MIB
#: Allowed growth of the peak from the small file to the big one; see the measurements in the test.
GROWTH_MARGIN = 24 * MIB


#: Spawns the measured command and reports its ru_maxrss. Needed because Linux carries a process's
#: peak RSS across execve() (exec_mmap keeps the old mm's high-water mark in signal->maxrss), and
#: Popen's vfork makes that old mm pytest's: spawned from here, a child reports at least pytest's
#: own RSS. Spawned from this small launcher, it reports at least ~10 MiB, then its own peak.
LAUNCHER = """
import os, subprocess, sys
out, err, *cmd = sys.argv[1:]
with open(out, "wb") as o, open(err, "wb") as e:
    proc = subprocess.Popen(cmd, stdout=o, stderr=e)
    _, status, usage = os.wait4(proc.pid, 0)
print(os.waitstatus_to_exitcode(status), usage.ru_maxrss)
"""


@dataclasses.dataclass(frozen=True)
class Measured:
    returncode: int
    peak_rss_kib: int  #: ru_maxrss from wait4(): the kernel's high-water mark of the child's RSS
    stdout: str
    stderr: str


def run_measured(cmd: list[str], env: Mapping[str, str], logs: Path, timeout: float) -> Measured:
    """Run `cmd` through LAUNCHER; its exit code, peak RSS and output (bench/common.py reads ru_maxrss alike)."""
    out_path, err_path = logs.with_suffix(".stdout"), logs.with_suffix(".stderr")
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(out_path), str(err_path), *cmd],
                                env=dict(env), stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        report, _ = launcher.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(launcher.pid, signal.SIGKILL)  # the launcher's own session: it and the extractor
        launcher.wait()
        raise
    returncode, maxrss = (int(v) for v in report.split())
    return Measured(returncode, maxrss, out_path.read_text(errors="replace"), err_path.read_text(errors="replace"))


def text_gazette(path: Path, size: int, seed: int) -> fx.Fixture:
    """A UTF-8 plain-text gazette of about `size` bytes, with characters beyond Latin-1 (as Tika's output has).

    Lines come from qd_devtools' prose pool (libmagic must see text/plain, not CSV); a ~1 MiB block is
    written over and over, so a 64 MB file takes a fraction of a second.
    """
    base = fx.txt_utf8(seed=seed)
    rng = random.Random(seed)
    pool = line_pool(seed, width=120)
    lines = [f"• “{line}” – {i}" if i % 20 == 0 else line for i, line in enumerate(rng.choices(pool, k=8000))]
    block = ("\n".join(lines) + "\n").encode("utf-8")
    with path.open("wb") as f:
        written = 0
        while written < size:
            f.write(block)
            written += len(block)
    return fx.Fixture(f"rss-txt-{uuid.uuid4().hex[:8]}", "txt", "text/plain", None, base.territory_id, base.date,
                      seed, path=path)


def test_peak_rss_does_not_grow_with_the_file(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    small = text_gazette(tmp_path / "small.txt", MIB + 1, seed=1)  # 1.3 MiB
    big = text_gazette(tmp_path / "big.txt", 64 * MIB, seed=2)  # 64.2 MiB
    rows = world.load([small, big])
    for fixture in (small, big):
        assert fixture.path is not None
        fixture.path.unlink()  # the extractor downloads its own copy
    peaks: list[int] = []
    try:
        for row in rows:
            m = run_measured([sys.executable, "-m", "qd_extractor", "extract", "--range", f"{row.id}:{row.id}"],
                             world.env(MEMORY_LIMIT_BYTES=str(LIMIT), QD_WORK_DIR=str(tmp_path)),
                             tmp_path / f"extract-{row.id}", timeout=120)
            assert m.returncode == 0, m.stderr[-2000:]
            assert world.states()[row.id][0] == "succeeded", m.stdout[-2000:]
            peaks.append(m.peak_rss_kib * 1024)
        with world.conn.cursor() as cur:
            cur.execute("SELECT gazette_id, text_bytes, truncated FROM qd_gazette_documents")
            documents = {r[0]: (r[1], r[2]) for r in cur.fetchall()}
    finally:
        world.s3.delete_objects(Bucket=world.bucket, Delete={"Objects": [
            {"Key": k} for r in rows for k in (r.file_path, storage.txt_key(r.file_path))]})
    # Both texts are over the index cap, so both documents index the same 1 MiB: only the file differs.
    assert [documents[r.id] for r in rows] == [(rows[0].size, True), (rows[1].size, True)]
    # Measured on the 2-core test machine: 100.1 and 101.9 MiB (+1.8 MiB: the 5 MiB multipart part
    # buffer the big upload needs, partly). Reading the 64 MB file into memory would add at least
    # 64 MiB as bytes, and twice that as a str (its characters beyond Latin-1 make it 2 bytes each).
    growth = peaks[1] - peaks[0]
    assert growth < GROWTH_MARGIN, (f"peak RSS {peaks[0] / MIB:.1f} MiB for {rows[0].size / MIB:.1f} MiB, "
                                    f"{peaks[1] / MIB:.1f} MiB for {rows[1].size / MIB:.1f} MiB")
