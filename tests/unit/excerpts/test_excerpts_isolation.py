"""A failing themed search is bisected down to the document that causes it (fakes, no services)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from opensearchpy.exceptions import RequestError

from qd_core.states import ErrorClass
from qd_extractor.excerpts.stage import ExcerptStage, StageOptions
from qd_extractor.excerpts.themes import Theme, ThemeQuery
from qd_extractor.search.bulk import SearchUnavailableError

THEME = Theme(name="T", index="t", queries=(ThemeQuery("Q", ((("x",),),)),), cases=())


class FakeExtractor:
    """Fails any batch containing a poison document, as OpenSearch would for the whole request."""

    def __init__(self, poison: set[str], error: Exception) -> None:
        self.poison = poison
        self.error = error
        self.calls: list[list[str]] = []

    def extract(self, theme: Theme, ids: list[str]) -> list[str]:
        self.calls.append(list(ids))
        if self.poison & set(ids):
            raise self.error
        return [f"{d}_e" for d in ids]


def _stage(extractor: FakeExtractor) -> ExcerptStage:
    stage = ExcerptStage(conn=None, client=None, writer=None, themes=[THEME], scorer=None,  # type: ignore[arg-type]
                         options=StageOptions(gazette_index="g"), logger=logging.getLogger("test.isolation"))
    stage.extractor = extractor  # type: ignore[assignment]
    return stage


def test_one_bad_document_does_not_fail_its_batch_mates() -> None:
    docs = [f"d{i}" for i in range(16)]
    extractor = FakeExtractor({"d11"}, RequestError(400, "search_phase_execution_exception", {}))
    failures: dict[str, tuple[ErrorClass, str]] = {}
    excerpts = _stage(extractor)._extract_isolating(THEME, docs, failures)
    assert sorted(excerpts) == sorted(f"{d}_e" for d in docs if d != "d11")
    assert list(failures) == ["d11"]
    assert failures["d11"][0] is ErrorClass.SEARCH
    assert len(extractor.calls) <= 2 * 4 + 1  # log2(16) levels, two searches each, plus the first


def test_a_bug_is_internal_and_an_outage_is_not_bisected() -> None:
    failures: dict[str, tuple[ErrorClass, str]] = {}
    _stage(FakeExtractor({"d1"}, KeyError("highlight")))._extract_isolating(THEME, ["d0", "d1"], failures)
    assert failures["d1"][0] is ErrorClass.INTERNAL and "KeyError" in failures["d1"][1]
    outage = FakeExtractor({"d1"}, SearchUnavailableError("down", []))
    with pytest.raises(SearchUnavailableError):
        _stage(outage)._extract_isolating(THEME, ["d0", "d1", "d2"], {})
    assert len(outage.calls) == 1


def test_options_defaults() -> None:
    options: Any = StageOptions(gazette_index="g")
    # upstream's batch of 250 ids; 50 hits per query and `_msearch` round (upstream scrolled 5 at a time)
    assert (options.search_batch, options.search_page) == (250, 50)
