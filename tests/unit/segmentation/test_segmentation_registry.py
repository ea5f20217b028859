"""Segmenter lookup, the text-size limit and segment storage keys."""

from __future__ import annotations

import datetime as dt
import sys
import tracemalloc

import pytest

from qd_extractor.segmentation import (
    PEAK_TEXT_COPIES,
    ALAssociationSegmenter,
    NoSegmenterError,
    SegmentationError,
    SegmentTextTooLargeError,
    TerritoryIndex,
    get_segmenter,
    is_association,
    known_association_ids,
    max_text_chars_for,
    segment_key,
)

INDEX = TerritoryIndex.from_rows([("2704302", "Maceió", "AL", "Alagoas"), ("2700300", "Arapiraca", "AL", "Alagoas")])


@pytest.mark.parametrize(
    ("territory_id", "expected"),
    [("2700000", True), ("2900000", True), ("2704302", False), ("2700001", False), ("270000 ", False),
     ("00000", True), ("27 00000", True)],
)
def test_is_association_uses_upstreams_last_five_characters(territory_id: str, expected: bool) -> None:
    assert is_association(territory_id) is expected
    assert (str(territory_id[-5:]).strip() == "00000") is expected


def test_al_association_has_a_segmenter() -> None:
    segmenter = get_segmenter("2700000", territories=INDEX, max_text_chars=100)
    assert isinstance(segmenter, ALAssociationSegmenter)
    assert known_association_ids() == ("2700000",)


@pytest.mark.parametrize("territory_id", ["2900000", "3100000", "2700000 "])
def test_other_association_ids_raise_naming_the_id(territory_id: str) -> None:
    with pytest.raises(NoSegmenterError) as info:
        get_segmenter(territory_id, territories=INDEX, max_text_chars=100)
    assert repr(territory_id) in str(info.value)
    assert "2700000" in str(info.value)
    assert info.value.territory_id == territory_id
    assert isinstance(info.value, SegmentationError)


def test_non_association_id_is_refused_with_its_own_reason() -> None:
    with pytest.raises(NoSegmenterError, match="'2704302' is not an association"):
        get_segmenter("2704302", territories=INDEX, max_text_chars=100)


TEXT = ("Cabeçalho AMA\nESTADO DE ALAGOAS\nPREFEITURA MUNICIPAL DE MACEIÓ\n\nSECRETARIA X\ncorpo\n"
        "Código Identificador:AB12\n")
GAZETTE = {"id": 1, "date": dt.date(2024, 1, 2), "file_path": "2700000/2024-01-02/a.pdf"}


def test_text_above_limit_is_refused_before_any_work() -> None:
    segmenter = get_segmenter("2700000", territories=INDEX, max_text_chars=len(TEXT) - 1)
    with pytest.raises(SegmentTextTooLargeError) as info:
        segmenter.segment(TEXT, GAZETTE, lambda key: key)
    assert (info.value.size_chars, info.value.limit_chars) == (len(TEXT), len(TEXT) - 1)
    assert f"{len(TEXT)} characters > limit {len(TEXT) - 1} characters" in str(info.value)


def test_text_at_limit_is_segmented() -> None:
    segmenter = get_segmenter("2700000", territories=INDEX, max_text_chars=len(TEXT))
    [segment] = segmenter.segment(TEXT, GAZETTE, lambda key: key)
    assert segment["territory_id"] == "2704302"


def test_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        ALAssociationSegmenter(INDEX, 0)


def test_max_text_chars_for_budget() -> None:
    assert max_text_chars_for(1_200_000_000) == 100_000_000
    assert max_text_chars_for(1) == 1


def test_peak_memory_stays_within_documented_copies() -> None:
    """The documented rule: peak ≈ the text plus two copies (PEAK_TEXT_COPIES in all)."""
    block = ("ESTADO DE ALAGOAS\nPREFEITURA MUNICIPAL DE {name}\n\nSECRETARIA DE SAÚDE\n"
             + "Licitação – pregão eletrônico nº 1/2024, objeto: aquisição de insumos.\n" * 30
             + "Código Identificador:{code:08X}\n\n")
    text = "Cabeçalho • AMA\n" + "".join(block.format(name=("MACEIÓ", "ARAPIRACA")[i % 2], code=i) for i in range(400))
    segmenter = get_segmenter("2700000", territories=INDEX, max_text_chars=len(text))
    tracemalloc.start()
    try:
        segmenter.segment(text, GAZETTE, lambda key: key)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= (PEAK_TEXT_COPIES - 1) * sys.getsizeof(text) * 1.1


@pytest.mark.parametrize(
    "date",
    [dt.date(2024, 3, 5), dt.datetime(2024, 3, 5, 23, 59), "2024-03-05"],
)
def test_segment_key_format(date: dt.date | str) -> None:
    assert segment_key("2704302", date, "abc") == "2704302/2024-03-05/abc.txt"


@pytest.mark.parametrize("date", ["05/03/2024", "2024-03-05T00:00:00", None])
def test_segment_key_rejects_other_dates(date: object) -> None:
    with pytest.raises(ValueError, match="segment date"):
        segment_key("2704302", date, "abc")  # type: ignore[arg-type]
