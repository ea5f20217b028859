"""Which ranges run next, and in how many pods (pure).

A wave is one Indexed Job over pending ranges of one stage and one memory tier, capped at
`parallelism × 8` ranges, so the retries, halves and promotions of a failed wave form new
small waves rather than waiting for a giant Job. The pods of all active waves together stay
within `spec.parallelism`.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Collection, Iterable, Mapping, Sequence

from qd_core.states import Stage
from qd_operator import indexes, model


@dataclasses.dataclass(frozen=True)
class Wave:
    """The ranges of the next Job (index i → ranges[i]) and its pod parallelism."""

    stage: Stage
    tier: int
    number: int
    ranges: tuple[model.RangeRow, ...]
    parallelism: int


def slots_in_use(job: model.JobLike) -> int:
    """Pods a Job may still run: its parallelism, capped by the indexes not yet finished.

    A suspended Job keeps its slots: it runs again on resume, and waves started meanwhile
    would push the run past spec.parallelism.
    """
    view = model.as_child_job(job)
    if view.condition("Complete") or view.condition("Failed"):
        return 0
    done = len(indexes.parse(view.completed_indexes)) + len(indexes.parse(view.failed_indexes))
    return max(0, min(view.parallelism, view.completions - done))


def free_slots(parallelism: int, jobs: Iterable[model.JobLike]) -> int:
    """How many more pods the run may start."""
    return max(0, parallelism - sum(slots_in_use(j) for j in jobs))


def choose(pending: Sequence[model.RangeRow], *, free: int, wave_size: int,
           next_numbers: Mapping[tuple[Stage, int], int],
           extract_done: Collection[str] | None = None) -> list[Wave]:
    """The waves to start now, given pending ranges and the free pod slots.

    Groups are taken in pipeline order (extract before excerpts), lower tiers first; each wave
    gets at most `free` pods and at most `free × 8` (≤ wave_size) ranges, so a wave started with
    few free slots stays small. When `extract_done` is given, an excerpts range is taken only if
    it lists the range's id (its extract succeeded); the planner only creates excerpts rows for
    succeeded extract ranges anyway.
    """
    waves: list[Wave] = []
    eligible = [r for r in pending if r.state is model.RangeState.PENDING
                and (r.stage is Stage.EXTRACT or extract_done is None or r.range_id in extract_done)]
    order = {stage: i for i, stage in enumerate(Stage)}
    eligible.sort(key=lambda r: (order[r.stage], r.tier, r.low, r.range_id))
    for (stage, tier), group in itertools.groupby(eligible, key=lambda r: (r.stage, r.tier)):
        if free <= 0:
            break
        rows = list(group)
        cap = min(wave_size, free * 8)
        chosen = tuple(rows[:cap])
        pods = min(free, len(chosen))
        waves.append(Wave(stage, tier, next_numbers.get((stage, tier), 0), chosen, pods))
        free -= pods
    return waves
