"""How many times one file is sent to Tika: strikes against the file vs outages of Tika.

A stand-in replaces the Tika client: making a real Tika crash and restart on demand, several times
in a row, is not feasible in a unit test (the real-Tika cases are in
tests/integration/extractor/test_extract_poison_file.py and test_extract_resilience.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from qd_core.states import ErrorClass
from qd_extractor import extract, tika
from qd_extractor.extract import GazetteError


class StandInTika:
    def __init__(self, waits: list[float], succeed_after: int | None = None) -> None:
        self.waits = waits  # what each wait_until_healthy() reports, in order
        self.succeed_after = succeed_after
        self.requests = 0

    def extract(self, src: Path, mime: str, dest: Path) -> int:
        self.requests += 1
        if self.succeed_after is not None and self.requests > self.succeed_after:
            return 0
        raise tika.TikaUnavailableError("Read timed out")

    def wait_until_healthy(self) -> float:
        return self.waits.pop(0)


def send(stand_in: StandInTika) -> None:
    extractor = object.__new__(extract.Extractor)
    extractor.tika = stand_in  # type: ignore[assignment]
    extractor._tika(Path("in"), "application/pdf", Path("out"), 10)


def test_three_failures_with_tika_up_fail_the_file() -> None:
    stand_in = StandInTika([0.01] * 10)
    with pytest.raises(GazetteError, match="3 times while answering /version") as err:
        send(stand_in)
    assert err.value.error is ErrorClass.TIKA and stand_in.requests == extract.TIKA_ROUNDS


def test_an_outage_is_waited_out_and_does_not_count_against_the_file() -> None:
    stand_in = StandInTika([0.01, 30.0, 30.0, 0.01], succeed_after=4)
    send(stand_in)  # two strikes and two outages: below both limits, then Tika answers
    assert stand_in.requests == 5


def test_a_file_that_takes_tika_down_every_time_fails_after_five_outages() -> None:
    stand_in = StandInTika([30.0] * 10)
    with pytest.raises(GazetteError, match="5 times, each time going down"):
        send(stand_in)
    assert stand_in.requests == extract.TIKA_OUTAGES
