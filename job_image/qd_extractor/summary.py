"""The counters every range run keeps, logged as `range_summary` and used for the exit code."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from qd_core.states import ErrorClass


def rounded_ms(timings: Mapping[str, float]) -> dict[str, float]:
    """Durations as logged: milliseconds to one decimal."""
    return {phase: round(ms, 1) for phase, ms in timings.items()}


class Timings(dict[str, float]):
    """Milliseconds per phase summed over a range; the phases named at creation are always reported."""

    def __init__(self, phases: Iterable[str] = ()) -> None:
        super().__init__(dict.fromkeys(phases, 0.0))

    def add(self, timings: Mapping[str, float]) -> None:
        """Add one gazette's (or one call's) phase durations."""
        for phase, ms in timings.items():
            self[phase] = self.get(phase, 0.0) + ms


@dataclasses.dataclass
class RangeSummary:
    """What a range run did; each stage adds its own counters (all with defaults) in a subclass."""

    low: int
    high: int
    seen: int = 0
    succeeded: int = 0
    failed: int = 0
    terminal: int = 0
    documents: int = 0
    errors: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)

    def record_failure(self, error: ErrorClass, terminal: bool) -> None:
        """One gazette failed (terminal: later runs will not retry it unless asked)."""
        self.failed += 1
        self.terminal += int(terminal)
        self.errors[error.value] += 1

    def log_fields(self) -> dict[str, Any]:
        """The `range_summary` event's fields: every counter, errors and timings as plain dicts."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "errors"}
        for name, value in fields.items():
            if isinstance(value, Timings):
                fields[name] = rounded_ms(value)
        return {**fields, "errors": dict(self.errors)}
