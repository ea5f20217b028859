"""The range summary both stages log as `range_summary`."""

from __future__ import annotations

import json

from qd_core.states import ErrorClass
from qd_extractor.excerpts.stage import ExcerptSummary
from qd_extractor.runner import Summary


def test_failures_count_by_class_and_terminality() -> None:
    s = Summary(10, 20)
    s.record_failure(ErrorClass.CORRUPT, terminal=True)
    s.record_failure(ErrorClass.CORRUPT, terminal=True)
    s.record_failure(ErrorClass.TIKA, terminal=False)
    assert (s.failed, s.terminal) == (3, 2)
    assert s.errors == {"corrupt": 2, "tika": 1}


def test_log_fields_carry_each_stage_counters_and_plain_errors() -> None:
    ex = Summary(1, 2, seen=3, source_bytes=7)
    ex.record_failure(ErrorClass.NOT_FOUND, terminal=True)
    fields = ex.log_fields()
    assert fields["low"] == 1 and fields["seen"] == 3 and fields["source_bytes"] == 7
    assert fields["errors"] == {ErrorClass.NOT_FOUND.value: 1}
    json.dumps(fields)  # a log line: must serialise as it is
    exc = ExcerptSummary(5, 6, excerpts=4).log_fields()
    assert exc["excerpts"] == 4 and "source_bytes" not in exc and exc["errors"] == {}
