"""AMA (2700000) segmentation: exact segments for a realistic multi-municipality gazette."""

from __future__ import annotations

import datetime as dt
import hashlib
import random
from typing import Any

import pytest
from seg_upstream_reference import upstream_md5, upstream_split

from qd_extractor.segmentation import (
    ALAssociationSegmenter,
    TerritoryIndex,
    UnknownTerritoryError,
    segment_key,
    split_text_by_territory,
)
from qd_extractor.segmentation.ama import _first_line

ENDPOINT = "data.queridodiario.ok.org.br"
ROWS = [
    ("2704302", "Maceió", "AL", "Alagoas"),
    ("2705705", "Olho d'Água das Flores", "AL", "Alagoas"),
    ("2704401", "Major Isidoro", "AL", "Alagoas"),
    ("2709400", "Viçosa", "AL", "Alagoas"),
    ("2700300", "Arapiraca", "AL", "Alagoas"),
    ("2700000", "Associação dos Municípios Alagoanos", "AL", "Alagoas"),
]
GAZETTE: dict[str, Any] = {
    "id": 98765,
    "source_text": "",
    "date": dt.date(2024, 3, 15),
    "edition_number": "2254",
    "is_extra_edition": False,
    "power": "executive",
    "file_checksum": "0cc175b9c0f1b6a831c399e269772661",
    "file_path": "2700000/2024-03-15/1f2e3d4c5b6a.pdf",
    "file_url": "https://www.diariomunicipal.com.br/ama/pdf/2254.pdf",
    "scraped_at": dt.datetime(2024, 3, 15, 8, 30, 1, 123456),
    "created_at": dt.datetime(2024, 3, 15, 8, 31),
    "territory_id": "2700000",
    "processed": False,
    "territory_name": "Associação dos Municípios Alagoanos",
    "state_code": "AL",
    "url": f"{ENDPOINT}/2700000/2024-03-15/1f2e3d4c5b6a.pdf",
    "file_raw_txt": f"{ENDPOINT}/2700000/2024-03-15/1f2e3d4c5b6a.txt",
}
UPSTREAM_FIELD_ORDER = [
    "id", "territory_name", "source_text", "date", "edition_number", "is_extra_edition", "power",
    "file_checksum", "scraped_at", "created_at", "processed", "file_path", "file_url", "state_code",
    "territory_id", "file_raw_txt", "url",
]

HEADER = ("Alagoas , 15 de Março de 2024   •   Diário Oficial dos Municípios do Estado de Alagoas   •    "
          "ANO XI | Nº 2254")
PREAMBLE = "EXPEDIENTE:\nAssociação dos Municípios Alagoanos – AMA\nDiretoria Executiva\n\n"
MACEIO_1 = ("ESTADO DE ALAGOAS\nPREFEITURA MUNICIPAL DE MACEIÓ\n\nSECRETARIA MUNICIPAL DE SAÚDE\n"
            "PORTARIA Nº 12/2024\nNomeia servidor para o cargo em comissão.\n\nPublicado por:\nAna Souza\n")
OLHO = ("ESTADO DE ALAGOAS\nPREFEITURA MUNICIPAL DE OLHO D'ÁGUA DAS FLORES\n\n\nGABINETE DO PREFEITO\n"
        "DECRETO Nº 7/2024\nDeclara ponto facultativo.\n\nPublicado por:\nJoão Lima\n")
MAJOR = ("ESTADO DE ALAGOAS\nPREFEITURA MUNICIPAL DE MAJOR IZIDORO\n\nSECRETARIA DE EDUCAÇÃO\n"
         "EXTRATO DE CONTRATO Nº 3/2024\nContratada: Papelaria Ltda.\n\nPublicado por:\nCarla Dias\n")
# "ESTADO DE ALAGOAS " (trailing space) and a name line with "/AL SECRETARIA ..." glued to it.
VICOSA = ("ESTADO DE ALAGOAS \nPREFEITURA MUNICIPAL DE VIÇOSA/AL SECRETARIA MUNICIPAL DE FINANÇAS\n\n\n"
          "AVISO DE LICITAÇÃO\nPregão Eletrônico nº 5/2024.\nPublicado por:\nPedro Alves\n")
MACEIO_2 = ("ESTADO DE ALAGOAS\nPREFEITURA MUNICIPAL DE MACEIÓ\n\n\nERRATA\nOnde se lê 12/2024, leia-se 13/2024.\n"
            "Publicado por:\nAna Souza\n")
TRAILER = "\n\nMatérias publicadas nesta edição: 5\nwww.diariomunicipal.com.br/ama\n"

TEXT = (
    f"\n \n{HEADER}\n\n{PREAMBLE}"
    f"{MACEIO_1}Código Identificador:5A1B2C3D\n\n"
    f"{OLHO}Código Identificador:9F8E7D6C\n\n"
    f"{HEADER}\n\n"  # the header repeats on every page
    f"{MAJOR}Código Identificador:0011AABB\n\n"
    f"{VICOSA}Código Ide ntificador: C0FFEE12\n\n"
    f"{MACEIO_2}Código Identificador:77EE88FF"
    f"{TRAILER}"
)

# Hand-derived unstripped segment texts. Rules: each starts with HEADER + "\n"; every publication
# adds "\n" + its text; each identifier gets "\n" on both sides; a removed header leaves "\n";
# the text after the last identifier is gone.
EXPECTED_TEXTS = {
    "2704302": (f"{HEADER}\n\n{MACEIO_1}\nCódigo Identificador:5A1B2C3D\n\n\n"
                f"\n{MACEIO_2}\nCódigo Identificador:77EE88FF"),
    "2705705": f"{HEADER}\n\n{OLHO}\nCódigo Identificador:9F8E7D6C\n\n\n\n\n\n",
    "2704401": f"{HEADER}\n\n{MAJOR}\nCódigo Identificador:0011AABB\n\n\n",
    "2709400": f"{HEADER}\n\n{VICOSA}\nCódigo Ide ntificador: C0FFEE12\n\n\n",
}
EXPECTED_NAMES = {"2704302": "Maceió", "2705705": "Olho d'Água das Flores", "2704401": "Major Isidoro",
                  "2709400": "Viçosa"}


def txt_url(key: str) -> str:
    return f"{ENDPOINT}/{key}"


@pytest.fixture()
def segmenter() -> ALAssociationSegmenter:
    return ALAssociationSegmenter(TerritoryIndex.from_rows(ROWS), max_text_chars=1_000_000)


def test_realistic_gazette_gives_exact_segments(segmenter: ALAssociationSegmenter) -> None:
    segments = segmenter.segment(TEXT, GAZETTE, txt_url)

    # First-appearance order: Maceió (twice, merged), Olho d'Água, Major Isidoro, Viçosa.
    assert [s["territory_id"] for s in segments] == list(EXPECTED_TEXTS)
    for segment in segments:
        tid = segment["territory_id"]
        text = EXPECTED_TEXTS[tid]
        checksum = hashlib.md5(text.encode("utf-8")).hexdigest()
        key = f"{tid}/2024-03-15/{checksum}.txt"
        expected = {
            **GAZETTE,
            "processed": True,
            "file_checksum": checksum,
            "source_text": text.strip(),
            "territory_name": EXPECTED_NAMES[tid],
            "territory_id": tid,
            "file_raw_txt": f"{ENDPOINT}/{key}",
        }
        assert segment == expected
        assert list(segment) == UPSTREAM_FIELD_ORDER
        assert segment["id"] == 98765 and segment["url"] == GAZETTE["url"]
        assert segment_key(tid, GAZETTE["date"], checksum) == key
    # Three of the four texts end in blank lines, so their md5 differs from the stripped text's.
    stripped_md5s = {hashlib.md5(s["source_text"].encode("utf-8")).hexdigest() for s in segments}
    assert len(stripped_md5s - {s["file_checksum"] for s in segments}) == 3
    assert GAZETTE["processed"] is False and GAZETTE["territory_id"] == "2700000"  # input untouched


def test_realistic_gazette_matches_upstream_oracle(segmenter: ALAssociationSegmenter) -> None:
    oracle = upstream_split(TEXT)
    assert list(oracle) == ["almaceio", "alolhoaguaflores", "almajorisidoro", "alvicosa"]
    assert list(oracle.values()) == list(EXPECTED_TEXTS.values())
    segments = segmenter.segment(TEXT, GAZETTE, txt_url)
    assert [s["file_checksum"] for s in segments] == [upstream_md5(t) for t in oracle.values()]


def test_trailer_and_preamble_are_dropped(segmenter: ALAssociationSegmenter) -> None:
    joined = "".join(s["source_text"] for s in segmenter.segment(TEXT, GAZETTE, txt_url))
    assert "Matérias publicadas" not in joined and "EXPEDIENTE" not in joined


def test_no_identifier_means_zero_segments(segmenter: ALAssociationSegmenter) -> None:
    text = f"{HEADER}\n\n{MACEIO_1}{OLHO}"
    assert upstream_split(text) == {}
    assert segmenter.segment(text, GAZETTE, txt_url) == []


@pytest.mark.parametrize("text", ["", "   ", "\n\n \t\n", "\u00a0\n"])
def test_empty_or_blank_text_means_zero_segments(segmenter: ALAssociationSegmenter, text: str) -> None:
    assert upstream_split(text) == {}
    assert segmenter.segment(text, GAZETTE, txt_url) == []


def test_unknown_municipality_fails_the_whole_gazette(segmenter: ALAssociationSegmenter) -> None:
    text = TEXT.replace("MAJOR IZIDORO", "ATLÂNTIDA")
    with pytest.raises(UnknownTerritoryError, match='Couldn\'t find info for "alatlantida"'):
        segmenter.segment(text, GAZETTE, txt_url)


def test_txt_url_receives_segment_keys(segmenter: ALAssociationSegmenter) -> None:
    seen: list[str] = []

    def relative(key: str) -> str:
        seen.append(key)
        return key

    segments = segmenter.segment(TEXT, GAZETTE, relative)
    assert seen == [s["file_raw_txt"] for s in segments]
    assert all(k.startswith(f"{s['territory_id']}/2024-03-15/") for k, s in zip(seen, segments, strict=True))


@pytest.mark.parametrize(
    ("name_block", "slug"),
    [
        # The name may span two lines (upstream joins them without a space).
        ("PREFEITURA MUNICIPAL DE OLHO D'ÁGUA DAS \nFLORES\n\nSECRETARIA X\n", "alolhoaguaflores"),
        # "EDUCAÇÃO" cannot start a name; "VAMOS" cannot start its second line.
        ("PREFEITURA MUNICIPAL DE EDUCAÇÃO\n\nSECRETARIA X\n", None),
        ("PREFEITURA MUNICIPAL DE POÇO DAS TRINCHEIRAS\nVAMOS JUNTOS\n\n\nX\n", None),
        # End marker variants: blank line + whitespace, "\n SECRETARIA", "\n Secretaria".
        ("PREFEITURA MUNICIPAL DE ARAPIRACA\n \nX\n", "alarapiraca"),
        ("PREFEITURA MUNICIPAL DE ARAPIRACA\n SECRETARIA X\n", "alarapiraca"),
        ("PREFEITURA MUNICIPAL DE ARAPIRACA\n Secretaria X\n", "alarapiraca"),
    ],
)
def test_marker_regex_edge_cases(name_block: str, slug: str | None) -> None:
    text = f"{HEADER}\nESTADO DE ALAGOAS\n\n{name_block}body\nCódigo Identificador:AB12\n"
    ours = {k: "".join(v) for k, v in split_text_by_territory(text).items()}
    assert ours == upstream_split(text)
    if slug is not None:
        assert slug in ours


@pytest.mark.parametrize("text", ["abc", "  \n  x y \nz", "\x1c\u2028 a\u00a0\n", "\t\r\nline\r\nnext", "no newline"])
def test_first_line_equals_upstream_expression(text: str) -> None:
    assert _first_line(text) == text.lstrip().split("\n", maxsplit=1)[0].rstrip()


NAMES = ["MACEIÓ", "ARAPIRACA", "OLHO D'ÁGUA DAS \nFLORES", "OLHO D'ÁGUA DAS\nFLORES", "VIÇOSA/AL SECRETARIA X",
         "MAJOR IZIDORO", "EDUCAÇÃO", "POÇO DAS TRINCHEIRAS\nVAMOS", "PALMEIRA DOS ÍNDIOS - AL", "X\n\nY"]
NOISE = ["\n", "\n\n", " ", "SECRETARIA", "Secretaria", "Código Identificador:", "ABC123", "corpo ", HEADER,
         "• ", "\u00a0", "– Nº 1/2024", "ESTADO DE ALAGOAS\n"]
IDENTIFIERS = ["Código Identificador:AB12", "Código Ide ntificador: 9Z", "Código Identificador:\n\nQQ", ""]


def _random_gazette(rng: random.Random) -> str:
    """A gazette-shaped text with random marker, name, end-marker and identifier variants."""
    out = [rng.choice(["", "\n", "  \n"]), HEADER, "\n"]
    for _ in range(rng.randint(0, 6)):
        out += ["ESTADO DE ALAGOAS", rng.choice(["", " ", "  "]), rng.choice(["\n", "\n\n", "\n\n\n"]),
                "PREFEITURA MUNICIPAL DE ", rng.choice(NAMES),
                rng.choice(["\n\n", "\n \n", "\n SECRETARIA", "\nSecretaria", "\n\nSecretaria", "\n"]),
                *(rng.choice(NOISE) for _ in range(rng.randint(0, 6))),
                rng.choice(IDENTIFIERS),
                rng.choice(["\n", "\n\n", f"\n{HEADER}\n", ""])]
    out.append(rng.choice(["", "\nFim da edição\n"]))
    return "".join(out)


def test_randomised_texts_match_upstream_oracle() -> None:
    rng = random.Random(20240315)
    with_segments = 0
    for _ in range(500):
        text = _random_gazette(rng)
        expected = upstream_split(text)
        ours = {k: "".join(v) for k, v in split_text_by_territory(text).items()}
        assert ours == expected
        assert list(ours) == list(expected)
        with_segments += bool(expected)
    assert with_segments > 100  # the generator does produce segments, not only empty results


def test_extra_gazette_keys_follow_upstream_fields(segmenter: ALAssociationSegmenter) -> None:
    gazette = {"selection_run": "r1", **GAZETTE}
    [first, *_] = segmenter.segment(TEXT, gazette, txt_url)
    assert list(first) == [*UPSTREAM_FIELD_ORDER, "selection_run"]
