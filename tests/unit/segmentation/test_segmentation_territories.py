"""Territory slugs and the slug -> territory index (upstream tasks/utils/territories.py)."""

from __future__ import annotations

import pytest
from seg_upstream_reference import upstream_slug

from qd_extractor.segmentation import Territory, TerritoryIndex, UnknownTerritoryError, territory_slug
from qd_extractor.segmentation.territories import SLUG_REPLACEMENTS, SLUG_STOPWORDS

# Expected values are literal: they pin the slugify behaviour (python-slugify legacy algorithm with
# the Unidecode backend; identical under 8.0.4, upstream's pin, and 9.2.0).
SLUG_CASES = [
    ("Maceió", "AL", "almaceio"),
    ("Olho d'Água das Flores", "AL", "alolhoaguaflores"),
    ("Olho D´Água do Casado", "AL", "alolhoaguacasado"),  # acute accent as apostrophe
    ("Olho d`Água Grande", "AL", "alolhoaguagrande"),
    ("Tanque d'Arca", "AL", "altanquearca"),
    ("Pão de Açúcar", "AL", "alpaoacucar"),
    ("Palmeira dos Índios", "AL", "alpalmeiraindios"),
    ("Coité do Nóia", "AL", "alcoitenoia"),
    ("Poço das Trincheiras", "AL", "alpocotrincheiras"),
    ("São José da Tapera", "AL", "alsaojosetapera"),
    ("Barra de São Miguel", "AL", "albarrasaomiguel"),
    ("MAJOR ISIDORO", "AL", "almajorisidoro"),
    ("Major Isidoro", "AL", "almajorisidoro"),
    ("Não-Me-Toque", "RS", "rsnaometoque"),
    ("Alta Floresta D'Oeste", "RO", "roaltaflorestaoeste"),
    ("Sant'Ana do Livramento", "RS", "rssantanalivramento"),
    ("  Água  Branca\t", "AL", "alaguabranca"),
    # A name whose line break was deleted keeps "das" glued, so it is no longer a stopword.
    ("OLHO D'ÁGUA DASFLORES", "AL", "alolhoaguadasflores"),
]


@pytest.mark.parametrize(("name", "state", "slug"), SLUG_CASES)
def test_slug_matches_literal_and_upstream_parameters(name: str, state: str, slug: str) -> None:
    assert territory_slug(name, state) == slug
    assert upstream_slug(name, state) == slug


def test_slug_parameters_are_upstreams() -> None:
    assert SLUG_STOPWORDS == ("de", "d", "da", "do", "das", "dos")
    assert SLUG_REPLACEMENTS == (("´", "'"), ("`", "'"))


ROWS = [
    ("2704302", "Maceió", "AL", "Alagoas"),
    ("2705705", "Olho d'Água das Flores", "AL", "Alagoas"),
    ("2704401", "Major Isidoro", "AL", "Alagoas"),
    ("3550308", "São Paulo", "SP", "São Paulo"),
    ("2700000", "Associação dos Municípios Alagoanos", "AL", "Alagoas"),
]


def test_rows_are_mapped_by_position_like_select_star() -> None:
    index = TerritoryIndex.from_rows(ROWS)
    assert len(index) == len(ROWS)
    assert index.lookup("almaceio") == {"id": "2704302", "territory_name": "Maceió", "state_code": "AL",
                                        "state": "Alagoas"}
    assert index.find("Olho d'Água das Flores", "AL")["id"] == "2705705"
    assert "spsaopaulo" in index
    assert "almaceio" in set(index)


def test_lookup_returns_a_copy() -> None:
    index = TerritoryIndex.from_rows(ROWS)
    index.lookup("almaceio")["id"] = "changed"
    assert index.lookup("almaceio")["id"] == "2704302"


def test_unknown_slug_keeps_upstream_message() -> None:
    index = TerritoryIndex.from_rows(ROWS)
    with pytest.raises(UnknownTerritoryError) as info:
        index.lookup("alatlantida")
    assert str(info.value) == 'Couldn\'t find info for "alatlantida"'
    assert info.value.slug == "alatlantida"
    assert isinstance(info.value, LookupError)


def test_slug_collision_last_row_wins_like_upstream_dict() -> None:
    index = TerritoryIndex([
        Territory(id="1", territory_name="Olho d'Água", state_code="AL", state="Alagoas"),
        Territory(id="2", territory_name="Olho dÁgua", state_code="AL", state="Alagoas"),
    ])
    assert len(index) == 2  # different slugs: "alolhoagua" vs "alolhodagua"
    index = TerritoryIndex([
        Territory(id="1", territory_name="Olho d'Água", state_code="AL", state="Alagoas"),
        Territory(id="2", territory_name="Olho d`Água", state_code="AL", state="Alagoas"),
    ])
    assert len(index) == 1
    assert index.lookup("alolhoagua")["id"] == "2"


def test_short_row_is_rejected() -> None:
    with pytest.raises(ValueError, match="3 columns"):
        TerritoryIndex.from_rows([("2704302", "Maceió", "AL")])
