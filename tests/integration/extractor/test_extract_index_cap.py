"""The index-text cap, end to end: a text over `budget.max_index_text` is indexed cut, the bucket keeps it whole.

The rule (qd_extractor.memory.Budget, search.documents): `source_text` holds at most limit/32
bytes of UTF-8 (1–16 MiB), cut on a character boundary, nothing appended; `file_raw_txt` points to
the whole text in S3; `qd_gazette_documents.truncated` records the cut. Plain-text gazettes are
read locally, so the test needs no Tika and a small limit keeps it fast.
"""

from __future__ import annotations

import random
import uuid

import pytest

from qd_devtools import fixtures as fx
from qd_devtools.text import line_pool
from qd_extractor import memory, storage

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
#: 48 MiB: limit/32 = 1.5 MiB, above the 1 MiB floor, so the cap is the L/32 share itself.
LIMIT = 48 * MIB
CAP = LIMIT // 32

#: (character, byte offset where it starts): each straddles the cap, but the last ends exactly on it.
BOUNDARIES = (("ç", CAP - 1), ("“", CAP - 2), ("𝄞", CAP - 3), ("€", CAP - 3))


def prose(rng: random.Random, pool: list[str], size: int) -> str:
    """At least `size` bytes of Portuguese gazette lines (accents: 2-byte characters throughout)."""
    lines: list[str] = []
    total = 0
    while total < size:
        lines.append(rng.choice(pool))
        total += len(lines[-1].encode("utf-8")) + 1
    return "\n".join(lines) + "\n"


def over_the_cap(char: str, start: int, seed: int) -> tuple[fx.Fixture, str]:
    """A ~2×CAP UTF-8 text whose `char` begins at byte `start`; and the prefix the index must hold."""
    rng = random.Random(seed)
    pool = line_pool(seed)
    head = prose(rng, pool, start).encode("utf-8")[:start - 200].decode("utf-8", "ignore")
    head += "x" * (start - len(head.encode("utf-8")))  # ASCII padding puts `char` exactly at `start`
    text = head + char + prose(rng, pool, CAP)
    expected = head + char if start + len(char.encode("utf-8")) <= CAP else head
    base = fx.txt_utf8(seed=seed)
    # A kind of its own, so the bucket key belongs to this test alone.
    fixture = fx.Fixture(f"cap-{uuid.uuid4().hex[:8]}", "txt", "text/plain", None, base.territory_id, base.date,
                         seed, text.encode("utf-8"))
    return fixture, expected


def test_text_over_the_cap_is_indexed_cut_and_stored_whole(world) -> None:  # type: ignore[no-untyped-def]
    assert memory.Budget.from_limit(LIMIT).max_index_text == CAP  # the rule this test is written against
    cases = [over_the_cap(char, start, seed=300 + i) for i, (char, start) in enumerate(BOUNDARIES)]
    small = fx.txt_utf8(seed=301)
    rows = world.load([f for f, _ in cases] + [small])
    try:
        result = world.run("extract", MEMORY_LIMIT_BYTES=str(LIMIT))
        assert result.returncode == 0, result.stderr[-3000:]
        states = world.states()
        with world.conn.cursor() as cur:
            cur.execute("SELECT gazette_id, text_bytes, truncated FROM qd_gazette_documents")
            documents = {r[0]: (r[1], r[2]) for r in cur.fetchall()}

        for (fixture, expected), row in zip(cases, rows[:-1], strict=True):
            full = fixture.read_bytes()
            assert states[row.id][0] == "succeeded", states[row.id]
            doc = world.doc(row.file_checksum)
            assert doc is not None
            indexed = doc["source_text"]
            assert len(doc) == 17  # nothing added to say it was cut
            assert indexed == expected  # the longest prefix that fits: a straddling character is dropped whole
            assert len(indexed.encode("utf-8")) <= CAP
            assert full.decode("utf-8").startswith(indexed) and "\ufffd" not in indexed
            key = storage.txt_key(row.file_path)
            assert doc["file_raw_txt"] == f"data.queridodiario.ok.org.br/{key}"
            assert world.s3.get_object(Bucket=world.bucket, Key=key)["Body"].read() == full  # whole in S3
            assert documents[row.id] == (len(full), True)

        small_row = rows[-1]
        small_text = small.read_bytes().decode("utf-8")
        assert states[small_row.id][0] == "succeeded"
        small_doc = world.doc(small_row.file_checksum)
        assert small_doc is not None and small_doc["source_text"] == small_text
        assert documents[small_row.id] == (len(small_text.encode("utf-8")), False)
    finally:
        keys = [k for r in rows[:-1] for k in (r.file_path, storage.txt_key(r.file_path))]
        world.s3.delete_objects(Bucket=world.bucket, Delete={"Objects": [{"Key": k} for k in keys]})
