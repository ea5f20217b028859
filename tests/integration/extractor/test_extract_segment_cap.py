"""An association segment larger than the index cap is indexed truncated, like any gazette text."""

from __future__ import annotations

import datetime as dt

import pytest

from qd_devtools import ama
from qd_devtools import fixtures as fx
from qd_devtools.text import paragraphs, wrap
from qd_extractor import memory
from qd_extractor.segmentation.ama import AL_ASSOCIATION_ID, split_text_by_territory

pytestmark = pytest.mark.integration

#: Index cap 1.5 MiB (limit/32) under segmentation cap 2 MiB (limit/24): room for a segment between.
LIMIT = 48 * memory.MIB
CAP = memory.Budget.from_limit(LIMIT).max_index_text
DATE = dt.date(2024, 3, 5)


def publication(name: str, secretaria: str, body: str, code: str) -> str:
    return (f"ESTADO DE ALAGOAS\nPREFEITURA MUNICIPAL DE {name}\n\nSECRETARIA MUNICIPAL DE {secretaria}\n"
            f"{body}\nCódigo Identificador:{code}\n")


def association_text(pad: int) -> str:
    """Header, a Maceió publication of ~1.7 MB (accented text), a small Penedo one, a trailer.

    `pad` ASCII characters in front of the big body move the cap's byte relative to the characters.
    """
    header = ama.header_line(ama.AL_LAYOUT, DATE, 1234)
    big = "x" * pad + "\n".join(wrap(paragraphs(7, "Maceió", 2700)))
    small = "\n".join(wrap(paragraphs(8, "Penedo", 2)))
    return (f"{header}\n{publication('MACEIÓ', 'EDUCAÇÃO', big, '0A1B2C3D4E')}"
            f"{publication('PENEDO', 'SAÚDE', small, '5F6A7B8C9D')}Matérias publicadas sob responsabilidade.\n")


def segments(text: str) -> dict[str, str]:
    """The full segment texts by slug, as the segmenter builds them (upstream's `source_text`)."""
    return {slug: "".join(parts).strip() for slug, parts in split_text_by_territory(text).items()}


def text_cutting_a_character() -> tuple[str, dict[str, str]]:
    """The association text whose Maceió segment crosses the cap inside a multi-byte character."""
    unpadded = segments(association_text(0))["almaceio"].encode("utf-8")
    inside = CAP
    while (unpadded[inside] & 0xC0) != 0x80:  # the last continuation byte at or before the cap
        inside -= 1
    text = association_text(CAP - inside)  # the padding moves that byte onto the cap
    full = segments(text)
    data = full["almaceio"].encode("utf-8")
    # Over the index cap, yet small enough to be segmented at all; the cap inside a character.
    assert len(data) > CAP and len(text.encode("utf-8")) < memory.Budget.from_limit(LIMIT).max_segment_text
    assert (data[CAP] & 0xC0) == 0x80
    return text, full


def test_segment_over_the_index_cap_is_indexed_truncated_and_stored_whole(world) -> None:  # type: ignore[no-untyped-def]
    text, full = text_cutting_a_character()
    fixture = fx.Fixture("association_txt", "txt", "text/plain", None, AL_ASSOCIATION_ID, DATE, 7,
                         text.encode("utf-8"))
    (gazette,) = world.load([fixture])

    result = world.run("extract", MEMORY_LIMIT_BYTES=str(LIMIT))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert world.states()[gazette.id] == ("succeeded", None, False)
    with world.conn.cursor() as cur:
        cur.execute("SELECT territory_id, doc_id, txt_key, text_bytes, truncated FROM qd_gazette_documents"
                    " WHERE gazette_id = %s", (gazette.id,))
        rows = {r[0]: r[1:] for r in cur.fetchall()}
    assert set(rows) == {"2704302", "2706703"}  # Maceió, Penedo

    doc_id, key, text_bytes, truncated = rows["2704302"]
    whole = full["almaceio"]
    assert world.text(key) == whole  # the bucket keeps the whole segment
    assert (text_bytes, truncated) == (len(whole.encode("utf-8")), True)
    doc = world.doc(doc_id)
    assert doc is not None
    indexed = doc["source_text"].encode("utf-8")
    assert CAP - 4 < len(indexed) < CAP  # cut before the character the cap falls in, not after it
    assert whole.startswith(doc["source_text"])

    doc_id, key, text_bytes, truncated = rows["2706703"]
    assert world.text(key) == full["alpenedo"]
    assert (text_bytes, truncated) == (len(full["alpenedo"].encode("utf-8")), False)
    doc = world.doc(doc_id)
    assert doc is not None and doc["source_text"] == full["alpenedo"]
