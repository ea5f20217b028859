"""The memory budget: read the pod's limit and size every buffer from it.

Memory is bounded by configuration, never by the size of a file: files and texts stream through
temp files; only these buffers live in memory, and each is a fraction of the limit. The limit comes
from `MEMORY_LIMIT_BYTES` (the Downward API, `resources.limits.memory`; upstream's deployment
already injects that name), else the cgroup (v2 `memory.max`, v1 `memory.limit_in_bytes`), else a
default. No RLIMIT_AS: it limits virtual memory and made upstream die importing torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from qd_core import config

MIB = 1024 * 1024
#: Assumed when no limit is set anywhere (a developer's laptop): generous but finite.
DEFAULT_LIMIT = 1024 * MIB
#: cgroup v1 reports "no limit" as a huge number near 2**63.
_UNLIMITED_V1 = 1 << 60

CGROUP_V2 = Path("/sys/fs/cgroup/memory.max")
CGROUP_V1 = Path("/sys/fs/cgroup/memory/memory.limit_in_bytes")


def _read_cgroup(v2: Path, v1: Path) -> int | None:
    for path in (v2, v1):
        try:
            raw = path.read_text().strip()
        except OSError:
            continue
        if raw == "max":
            return None
        try:
            value = int(raw)
        except ValueError:
            continue
        return None if value >= _UNLIMITED_V1 else value
    return None


def detect_limit(env: Mapping[str, str] | None = None, *, cgroup_v2: Path = CGROUP_V2,
                 cgroup_v1: Path = CGROUP_V1) -> tuple[int, str]:
    """Return the memory limit in bytes and where it came from.

    QD_MEMORY_BUDGET_BYTES, when set, wins over everything: it sizes the buffers as if the pod had
    that much memory (for a pod whose limit is not a good guide; the e2e tests also use it to make a
    big gazette exceed a small tier for real).
    """
    override = config.env_int("QD_MEMORY_BUDGET_BYTES", 0, minimum=0, env=env)
    if override:
        return override, "QD_MEMORY_BUDGET_BYTES"
    from_env = config.env_int("MEMORY_LIMIT_BYTES", 0, minimum=0, env=env)
    if from_env:
        return from_env, "MEMORY_LIMIT_BYTES"
    from_cgroup = _read_cgroup(cgroup_v2, cgroup_v1)
    if from_cgroup:
        return from_cgroup, "cgroup"
    return DEFAULT_LIMIT, "default"


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


@dataclasses.dataclass(frozen=True)
class Budget:
    """Buffer sizes (bytes) derived from the limit; each field says its share and bounds."""

    limit: int
    #: Read/write chunk for streaming S3 and Tika bodies: limit/256, 64 KiB–1 MiB.
    io_chunk: int
    #: Multipart part size for .txt uploads (S3 minimum 5 MiB): limit/32, 5–64 MiB.
    part_size: int
    #: Largest text put into one index document (the rest stays in S3): limit/32, 1–16 MiB. The
    #: document lives in ~5 copies while it is serialised, and OpenSearch analyses it three times
    #: with term vectors: a 21 MiB text exhausted a 512 MiB-heap node in the benchmarks.
    max_index_text: int
    #: Bulk NDJSON pending plus in flight: limit/24, 1–20 MiB. The extract pipeline may queue as much
    #: again as document texts for its index thread while requests are in flight.
    bulk_bytes: int
    #: Largest association text segmented in memory (~4 copies live at once): limit/24, 1–64 MiB.
    max_segment_text: int

    @classmethod
    def from_limit(cls, limit: int) -> Budget:
        return cls(
            limit=limit,
            io_chunk=_clamp(limit // 256, 64 * 1024, MIB),
            part_size=_clamp(limit // 32, 5 * MIB, 64 * MIB),
            max_index_text=_clamp(limit // 32, MIB, 16 * MIB),
            bulk_bytes=_clamp(limit // 24, MIB, 20 * MIB),
            max_segment_text=_clamp(limit // 24, MIB, 64 * MIB),
        )
