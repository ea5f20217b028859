"""Municipality-name normalisation (upstream `_normalize_territory_name`)."""

from __future__ import annotations

import pytest
from seg_upstream_reference import upstream_normalize

from qd_extractor.segmentation import normalize_territory_name

# One case per alternative of upstream's suffix regex, in upstream's order.
SUFFIX_CASES = [
    ("VIÇOSA/AL SECRETARIA MUNICIPAL DE FINANÇAS", "VIÇOSA"),
    ("ATALAIA GABINETE DO PREFEITO", "ATALAIA"),
    ("ANADIA PODER EXECUTIVO", "ANADIA"),
    ("MACEIÓ http://www.maceio.al.gov.br", "MACEIÓ"),
    ("MURICI PORTARIA Nº 10/2024", "MURICI"),
    ("MESSIAS Extrato do contrato", "MESSIAS"),
    ("PILAR ATA DE REGISTRO DE PREÇOS", "PILAR"),
    ("PIAÇABUÇU SECRETARIA DE SAÚDE", "PIAÇABUÇU"),
    ("IGACI Fundo Municipal de Saúde", "IGACI"),
    ("CRAÍBAS SETOR DE LICITAÇÃO", "CRAÍBAS"),
    ("PENEDO ERRATA", "PENEDO"),
    ("PALMEIRA DOS ÍNDIOS - AL", "PALMEIRA DOS ÍNDIOS"),
    ("BELÉM GABINETE", "BELÉM"),
    ("CAMPO ALEGRE EXTRATO DE CONTRATO", "CAMPO ALEGRE"),
    ("TRAIPU SÚMULA DE CONTRATO", "TRAIPU"),
    ("FELIZ DESERTO RATIFICAÇÃO DE DISPENSA", "FELIZ DESERTO"),
]

OTHER_CASES = [
    # strip, then delete line breaks: a break after a space keeps one space, otherwise words glue.
    ("  MACEIÓ \n", "MACEIÓ"),
    ("\n\nARAPIRACA", "ARAPIRACA"),
    ("OLHO D'ÁGUA DAS \nFLORES", "OLHO D'ÁGUA DAS FLORES"),
    ("OLHO D'ÁGUA DAS\nFLORES", "OLHO D'ÁGUA DASFLORES"),
    # \s* has no minimum: a suffix glued to the name is still cut; spaces before it go too.
    ("MARAGOGIPORTARIA 3", "MARAGOGI"),
    ("SATUBA   \t/AL", "SATUBA"),
    # Case-sensitive: only the spellings in the regex are cut.
    ("QUEBRANGULO Secretaria de Saúde", "QUEBRANGULO Secretaria de Saúde"),
    ("MARAGOGI portaria", "MARAGOGI portaria"),
    ("PORTO DE PEDRAS", "PORTO DE PEDRAS"),
    # The fix-up is an exact match applied after the suffix cut.
    ("MAJOR IZIDORO", "MAJOR ISIDORO"),
    (" MAJOR IZIDORO\n", "MAJOR ISIDORO"),
    ("MAJOR IZIDORO/AL", "MAJOR ISIDORO"),
    ("MAJOR\nIZIDORO", "MAJORIZIDORO"),
    ("Major Izidoro", "Major Izidoro"),
]


@pytest.mark.parametrize(("raw", "expected"), SUFFIX_CASES + OTHER_CASES)
def test_normalisation(raw: str, expected: str) -> None:
    assert normalize_territory_name(raw) == expected
    assert upstream_normalize(raw) == expected


def test_every_suffix_alternative_is_covered() -> None:
    from qd_extractor.segmentation.ama import RE_NAME_SUFFIXES

    alternatives = RE_NAME_SUFFIXES.pattern[len(r"\s*(") : -1].split("|")
    assert len(alternatives) == len(SUFFIX_CASES) == 16
    for alternative, (raw, expected) in zip(alternatives, SUFFIX_CASES, strict=True):
        literal = alternative.removesuffix(".*").replace("\\/", "/")
        assert raw[len(expected):].lstrip().startswith(literal), (alternative, raw)
