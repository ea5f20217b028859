"""Choosing waves: one stage and tier per Job, small waves, pods within spec.parallelism."""

from __future__ import annotations

from typing import Any

from qd_core.states import Stage
from qd_operator import indexes, model, waves

E, X = Stage.EXTRACT, Stage.EXCERPTS


def row(i: int, stage: Stage = E, tier: int = 0, state: model.RangeState = model.RangeState.PENDING) -> model.RangeRow:
    return model.RangeRow(f"r{i:04d}", stage, i * 10, i * 10 + 9, 10, tier=tier, state=state)


def job(parallelism: int, completions: int, done: str = "", failed: str = "", finished: bool = False,
        suspend: bool = False) -> dict[str, Any]:
    conditions = [{"type": "Complete", "status": "True"}] if finished else []
    return {"spec": {"parallelism": parallelism, "completions": completions, "suspend": suspend},
            "status": {"completedIndexes": done, "failedIndexes": failed, "conditions": conditions}}


def test_a_wave_holds_one_stage_and_tier_capped_at_parallelism_times_eight() -> None:
    pending = [row(i) for i in range(40)]
    (wave,) = waves.choose(pending, free=2, wave_size=16, next_numbers={})
    assert (wave.stage, wave.tier, wave.number, wave.parallelism) == (E, 0, 0, 2)
    assert [r.range_id for r in wave.ranges] == [f"r{i:04d}" for i in range(16)]


def test_groups_in_pipeline_then_tier_order_until_slots_run_out() -> None:
    pending = [row(9, X), row(1, E, tier=1), row(2, E), row(3, E)]
    chosen = waves.choose(pending, free=4, wave_size=32, next_numbers={(E, 0): 5, (E, 1): 2})
    assert [(w.stage, w.tier, w.number, len(w.ranges), w.parallelism) for w in chosen] == [
        (E, 0, 5, 2, 2), (E, 1, 2, 1, 1), (X, 0, 0, 1, 1)]


def test_few_free_slots_make_a_small_wave() -> None:
    (wave,) = waves.choose([row(i) for i in range(100)], free=1, wave_size=64, next_numbers={})
    assert len(wave.ranges) == 8 and wave.parallelism == 1


def test_no_free_slot_no_wave() -> None:
    assert waves.choose([row(1)], free=0, wave_size=16, next_numbers={}) == []
    assert waves.choose([], free=5, wave_size=16, next_numbers={}) == []


def test_only_pending_ranges_are_taken() -> None:
    pending = [row(1, state=model.RangeState.RUNNING), row(2, state=model.RangeState.FAILED), row(3)]
    (wave,) = waves.choose(pending, free=3, wave_size=24, next_numbers={})
    assert [r.range_id for r in wave.ranges] == ["r0003"]


def test_excerpts_wait_for_their_extract() -> None:
    pending = [row(1, X), row(2, X)]
    (wave,) = waves.choose(pending, free=2, wave_size=16, next_numbers={}, extract_done={"r0002"})
    assert [r.range_id for r in wave.ranges] == ["r0002"]
    assert waves.choose(pending, free=2, wave_size=16, next_numbers={}, extract_done=set()) == []


def test_slots_in_use_count_unfinished_indexes_only() -> None:
    assert waves.slots_in_use(job(4, 10)) == 4
    assert waves.slots_in_use(job(4, 10, done="0-6", failed="8")) == 2
    assert waves.slots_in_use(job(4, 10, done="0-9")) == 0
    assert waves.slots_in_use(job(4, 10, finished=True)) == 0
    assert waves.slots_in_use(job(4, 10, suspend=True)) == 4  # it comes back on resume
    assert waves.slots_in_use({}) == 0


def test_free_slots_over_all_jobs_of_the_run() -> None:
    assert waves.free_slots(8, [job(4, 10), job(3, 3, done="0")]) == 2
    assert waves.free_slots(2, [job(4, 10)]) == 0


def test_index_strings_both_ways() -> None:
    assert indexes.parse("1,3-5,7") == [1, 3, 4, 5, 7]
    assert indexes.parse(None) == [] and indexes.parse("") == []
    assert indexes.compress([7, 1, 3, 4, 5, 5]) == "1,3-5,7"
    assert indexes.compress([]) == ""
    assert indexes.parse(indexes.compress(range(0, 1000, 3))) == list(range(0, 1000, 3))
