"""Every fixture class ends in the expected state, with the expected objects and documents."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from qd_devtools import fixtures as fx
from qd_extractor import storage

pytestmark = pytest.mark.integration

GOOD = ("text_pdf", "docx", "odt", "doc", "txt_utf8", "txt_latin1", "image_only_pdf")
TERMINAL = {"html_as_pdf": "unsupported_type", "html_no_ext": "unsupported_type", "empty": "unsupported_type",
            "corrupt_pdf": "corrupt", "zip_as_bin": "unsupported_type",
            "association_no_segmenter": "no_segmenter"}


def build_batch() -> list[fx.Fixture]:
    items = [getattr(fx, kind)(seed=1) for kind in GOOD]
    items += [fx.html_as_pdf(1), fx.html_no_ext(1), fx.empty(1), fx.corrupt_pdf(1), fx.association(1),
              fx.association_no_segmenter(1), fx.zip_archive(1), fx.zip_archive(2, extension="bin")]
    return items


def test_one_range_with_every_fixture_class(world) -> None:  # type: ignore[no-untyped-def]
    batch = build_batch()
    loaded = world.load(batch)
    by_kind = {g.kind: g for g in loaded}
    by_kind["zip_as_bin"] = next(g for g in loaded if g.kind == "zip" and g.file_path.endswith(".bin"))
    zip_row = next(g for g in loaded if g.kind == "zip" and g.file_path.endswith(".zip"))
    # A row whose object is missing from the bucket (404).
    missing = world.load([fx.text_pdf(seed=99)])[0]
    world.s3.delete_object(Bucket=world.bucket, Key=missing.file_path)

    result = world.run("extract")
    assert result.returncode == 0, result.stderr[-3000:]
    states = world.states()
    processed = world.processed()

    for kind in GOOD:
        g = by_kind[kind]
        assert states[g.id][0] == "succeeded", (kind, states[g.id])
        assert processed[g.id] is True
        doc = world.doc(g.file_checksum)
        assert doc is not None, kind
        assert len(doc) == 17
        assert doc["file_raw_txt"] == f"data.queridodiario.ok.org.br/{storage.txt_key(g.file_path)}"
        assert doc["url"] == f"data.queridodiario.ok.org.br/{g.file_path}"
        assert doc["processed"] is False  # the value read before the update, as upstream
        fixture = next(f for f in batch if f.kind == kind)
        text = world.text(storage.txt_key(g.file_path))
        if fixture.phrase:
            assert fixture.phrase in text, kind
            assert fixture.phrase in doc["source_text"], kind
        assert doc["source_text"] == text

    for kind, error in TERMINAL.items():
        g = by_kind[kind]
        state, error_class, terminal = states[g.id]
        assert (state, error_class, terminal) == ("failed", error, True), kind
        assert processed[g.id] is False
        assert world.doc(g.file_checksum) is None

    assert states[missing.id] == ("failed", "not_found", True)
    assert zip_row.id not in states  # `.zip` keys are filtered out by the selection, as upstream

    # The association gazette: parent text uploaded, parent not indexed, one document per segment.
    assoc = by_kind["association"]
    assert states[assoc.id][0] == "succeeded" and processed[assoc.id] is True
    assert world.doc(assoc.file_checksum) is None
    parent_text = world.text(storage.txt_key(assoc.file_path))
    with world.conn.cursor() as cur:
        cur.execute("SELECT doc_id, territory_id, txt_key FROM qd_gazette_documents WHERE gazette_id = %s",
                    (assoc.id,))
        segments = cur.fetchall()
    fixture = next(f for f in batch if f.kind == "association")
    assert len(segments) == len(set(fixture.segments)) >= 3
    for doc_id, territory_id, key in segments:
        doc = world.doc(doc_id)
        assert doc is not None
        assert doc["territory_id"] == territory_id and doc["id"] == assoc.id and doc["processed"] is True
        assert key == f"{territory_id}/{assoc.date.isoformat()}/{doc_id}.txt"
        segment_text = world.text(key)
        assert segment_text == doc["source_text"]
        # Every segment starts with the association's header line (upstream's layout).
        assert segment_text.startswith(parent_text.lstrip().split("\n", 1)[0])
    expected_docs = len(GOOD) + len(segments)
    assert world.count() == expected_docs

    # A rerun changes nothing: nothing is pending any more, and ALL mode rewrites the same ids.
    again = world.run("extract")
    assert again.returncode == 0
    assert world.states() == states
    all_mode = world.run("extract", EXECUTION_MODE="ALL", QD_RUN_ID="another-run")  # redoes every gazette
    assert all_mode.returncode == 0
    assert world.count() == expected_docs
    assert hashlib.md5(world.text(storage.txt_key(by_kind["text_pdf"].file_path)).encode()).digest()


def test_file_over_the_size_cap_is_refused_without_download(world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    big = fx.big_pdf(tmp_path / "big.pdf", size_mb=3)
    small = fx.text_pdf(seed=5)
    big_row, small_row = world.load([big, small])
    result = world.run("extract", MAX_GAZETTE_FILE_SIZE_MB="2")
    assert result.returncode == 0, result.stderr[-2000:]
    states = world.states()
    assert states[big_row.id] == ("failed", "too_large", True)
    assert states[small_row.id][0] == "succeeded"
    with world.conn.cursor() as cur:
        cur.execute("SELECT source_bytes FROM qd_gazette_state WHERE gazette_id = %s", (big_row.id,))
        assert cur.fetchone()[0] == big.size


def test_terminal_failures_are_not_retried_unless_asked(world) -> None:  # type: ignore[no-untyped-def]
    (html,) = world.load([fx.html_as_pdf(seed=7)])
    assert world.run("extract").returncode == 0
    with world.conn.cursor() as cur:
        cur.execute("SELECT attempts FROM qd_gazette_state WHERE gazette_id = %s", (html.id,))
        assert cur.fetchone()[0] == 1
        assert world.run("extract").returncode == 0
        cur.execute("SELECT attempts FROM qd_gazette_state WHERE gazette_id = %s", (html.id,))
        assert cur.fetchone()[0] == 1  # not selected again
        assert world.run("extract", QD_RETRY_TERMINAL="true").returncode == 0
        cur.execute("SELECT attempts FROM qd_gazette_state WHERE gazette_id = %s", (html.id,))
        assert cur.fetchone()[0] == 2


def test_extra_mime_types_opt_in_extracts_html(world) -> None:  # type: ignore[no-untyped-def]
    (html,) = world.load([fx.html_no_ext(seed=8)])
    assert world.run("extract", QD_EXTRA_MIME_TYPES="text/html").returncode == 0
    assert world.states()[html.id][0] == "succeeded"
    assert world.doc(html.file_checksum) is not None
