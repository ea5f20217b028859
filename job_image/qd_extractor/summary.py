"""The counters every range run keeps, logged as `range_summary` and used for the exit code."""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

from qd_core.states import ErrorClass


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
        """The `range_summary` event's fields: every counter, the errors as a plain dict."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "errors"}
        return {**fields, "errors": dict(self.errors)}
