"""The memory limit comes from the Downward API or the cgroup, and every buffer is a share of it."""

from __future__ import annotations

from pathlib import Path

import pytest

from qd_core.config import ConfigError
from qd_extractor import memory

MIB = memory.MIB


def test_downward_api_variable_wins(tmp_path: Path) -> None:
    v2 = tmp_path / "memory.max"
    v2.write_text("1073741824\n")
    assert memory.detect_limit({"MEMORY_LIMIT_BYTES": "268435456"}, cgroup_v2=v2) == (268435456, "MEMORY_LIMIT_BYTES")


def test_cgroup_v2_limit(tmp_path: Path) -> None:
    v2 = tmp_path / "memory.max"
    v2.write_text("536870912\n")
    assert memory.detect_limit({}, cgroup_v2=v2, cgroup_v1=tmp_path / "none") == (536870912, "cgroup")


def test_cgroup_v2_max_means_unlimited(tmp_path: Path) -> None:
    v2 = tmp_path / "memory.max"
    v2.write_text("max\n")
    assert memory.detect_limit({}, cgroup_v2=v2, cgroup_v1=tmp_path / "none") == (memory.DEFAULT_LIMIT, "default")


def test_cgroup_v1_limit_and_its_unlimited_sentinel(tmp_path: Path) -> None:
    v1 = tmp_path / "memory.limit_in_bytes"
    v1.write_text("268435456\n")
    assert memory.detect_limit({}, cgroup_v2=tmp_path / "none", cgroup_v1=v1) == (268435456, "cgroup")
    v1.write_text("9223372036854771712\n")
    assert memory.detect_limit({}, cgroup_v2=tmp_path / "none", cgroup_v1=v1)[1] == "default"


def test_bad_variable_is_named() -> None:
    with pytest.raises(ConfigError, match="MEMORY_LIMIT_BYTES='256Mi' is not an integer"):
        memory.detect_limit({"MEMORY_LIMIT_BYTES": "256Mi"})


@pytest.mark.parametrize("limit_mib", [128, 256, 512, 1024, 6144])
def test_buffers_are_bounded_shares_of_the_limit(limit_mib: int) -> None:
    b = memory.Budget.from_limit(limit_mib * MIB)
    assert 64 * 1024 <= b.io_chunk <= MIB
    assert 5 * MIB <= b.part_size <= 64 * MIB  # S3's minimum part size is 5 MiB
    # What can be live at once stays well under the limit, even at the smallest tier.
    live = b.io_chunk * 2 + b.part_size + b.max_index_text * 3 + b.bulk_bytes * 2
    assert live < b.limit * 0.75


def test_budget_grows_with_the_limit_but_is_capped() -> None:
    small, large, huge = (memory.Budget.from_limit(m * MIB) for m in (256, 1024, 65536))
    assert small.max_index_text < large.max_index_text <= huge.max_index_text == 16 * MIB
    assert huge.bulk_bytes == 20 * MIB


def test_explicit_budget_overrides_the_limit() -> None:
    env = {"QD_MEMORY_BUDGET_BYTES": str(2048 * MIB), "MEMORY_LIMIT_BYTES": str(128 * MIB)}
    assert memory.detect_limit(env) == (2048 * MIB, "QD_MEMORY_BUDGET_BYTES")


def test_read_capped_cuts_on_a_character_boundary(tmp_path: Path) -> None:
    from qd_extractor.search.documents import read_capped

    path = tmp_path / "t.txt"
    path.write_text("ação" * 10, encoding="utf-8")  # 6 bytes per word
    assert read_capped(path, 1000) == ("ação" * 10, False)
    text, cut = read_capped(path, 8)  # "ação" (6 bytes) + "a" + half of "ç"
    assert cut is True and text == "açãoa"
