"""The JSON log lines of a real extract run: upstream's events, one outcome per gazette, range totals."""

from __future__ import annotations

import json
from typing import Any

import pytest

from qd_devtools import fixtures as fx
from qd_extractor.runner import PHASES

pytestmark = pytest.mark.integration

#: The phases a gazette's outcome carries once it got that far.
SUCCEEDED_PHASES = {"download_ms", "text_ms", "upload_ms", "prepare_ms", "queued_ms"}
TEXT_FAILED_PHASES = {"download_ms", "text_ms", "prepare_ms"}


def test_outcomes_upstream_events_and_range_totals(world) -> None:  # type: ignore[no-untyped-def]
    good = world.load([fx.text_pdf(seed=61), fx.docx(seed=62)])
    (corrupt,) = world.load([fx.corrupt_pdf(seed=63)])  # Tika refuses it: failed after download and text
    result = world.run("extract", timeout=120)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    log = [json.loads(line) for line in lines]  # every stdout line is one JSON object

    def of(event_type: str) -> list[dict[str, Any]]:
        return [e for e in log if e.get("event_type") == event_type]

    outcomes = {e["gazette_id"]: e for e in of("gazette_outcome")}
    assert len(of("gazette_outcome")) == len(outcomes) == 3
    for g in good:
        assert outcomes[g.id]["state"] == "succeeded"
        timings = outcomes[g.id]["timings_ms"]
        assert set(timings) == SUCCEEDED_PHASES and all(v >= 0 for v in timings.values()), timings
        assert timings["download_ms"] > 0 and timings["text_ms"] > 0
    failed = outcomes[corrupt.id]
    assert (failed["state"], failed["error_class"]) == ("failed", "corrupt")
    assert set(failed["timings_ms"]) == TEXT_FAILED_PHASES and failed["timings_ms"]["text_ms"] > 0

    # Upstream's event names and fields, as its log tooling greps them.
    requests, responses, errors = of("tika_request"), of("tika_response"), of("tika_error")
    assert len(requests) == 3 and all("file_size_mb" in e for e in requests)
    assert len(responses) == 2 and all(e["status"] == 200 and e["duration_ms"] >= 0 for e in responses)
    assert len(errors) == 1 and errors[0]["status"] in (415, 422)
    bulks = [e for e in of("opensearch_operation") if e["operation"] == "bulk"]
    assert bulks and sum(e["count"] for e in bulks) == 2 and all(e["success"] for e in bulks)

    (summary,) = of("range_summary")
    assert log[-1] is summary  # the last word of the range
    assert (summary["seen"], summary["succeeded"], summary["failed"], summary["documents"]) == (3, 2, 1, 2)
    assert summary["errors"] == {"corrupt": 1}
    assert (summary["tika_requests"], summary["tika_failures"]) == (3, 1)
    totals = summary["timings_ms"]
    assert set(totals) == set(PHASES) and all(v >= 0 for v in totals.values()), totals
    assert totals["bulk_ms"] > 0  # the index thread waited for at least the final flush
    for phase in SUCCEEDED_PHASES:  # the range totals are the gazettes' sums (each rounded to 0.1 ms)
        per_gazette = sum(o["timings_ms"].get(phase, 0.0) for o in outcomes.values())
        assert abs(totals[phase] - per_gazette) <= 0.2, (phase, totals[phase], per_gazette)
