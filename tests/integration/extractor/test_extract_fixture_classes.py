"""Every fixture class ends in the expected state, with the expected objects and documents."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests

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

    assert_reruns_are_idempotent(world, {by_kind[k].id for k in (*GOOD, "association")})


def snapshot(world: Any) -> dict[str, Any]:
    """Everything a run leaves behind: state rows, document rows, `processed`, .txt objects, index documents."""
    with world.conn.cursor() as cur:
        cur.execute("SELECT gazette_id, state, error_class, terminal, attempts, run_id, source_bytes, text_bytes,"
                    " documents FROM qd_gazette_state WHERE stage = 'extract'")
        states = {r[0]: r[1:] for r in cur.fetchall()}
        cur.execute("SELECT gazette_id, doc_id, territory_id, txt_key, text_bytes, truncated FROM qd_gazette_documents")
        documents = sorted(cur.fetchall())
        cur.execute("SELECT id, processed FROM gazettes")
        processed = dict(cur.fetchall())
        cur.execute("SELECT g.file_path FROM gazettes g JOIN qd_gazette_state s ON s.gazette_id = g.id"
                    " WHERE s.stage = 'extract' AND s.state = 'succeeded'")
        keys = {storage.txt_key(r[0]) for r in cur.fetchall()} | {d[3] for d in documents}
    objects = {}
    for key in sorted(keys):
        obj = world.s3.get_object(Bucket=world.bucket, Key=key)
        objects[key] = (obj["ETag"], obj["Body"].read())
    requests.post(f"{world.opensearch}/{world.index}/_refresh", timeout=30).raise_for_status()
    resp = requests.post(f"{world.opensearch}/{world.index}/_search", timeout=30,
                         json={"size": 1000, "version": True, "query": {"match_all": {}}})
    resp.raise_for_status()
    hits = resp.json()["hits"]["hits"]
    index = {h["_id"]: (h["_source"], h["_version"]) for h in hits}
    assert len(index) == len(hits)
    return {"states": states, "documents": documents, "processed": processed, "objects": objects, "index": index}


def assert_reruns_are_idempotent(world: Any, succeeded: set[int]) -> None:
    """A rerun redoes nothing; an ALL-mode run redoes every success in place, with the same content."""
    before = snapshot(world)
    assert set(before["states"]) > succeeded and len(before["index"]) == world.count()

    again = world.run("extract")  # UNPROCESSED, same run: nothing is pending any more
    assert again.returncode == 0, again.stderr[-2000:]
    assert snapshot(world) == before  # not even rewritten: every document keeps its version

    all_mode = world.run("extract", EXECUTION_MODE="ALL", QD_RUN_ID="another-run")
    assert all_mode.returncode == 0, all_mode.stderr[-2000:]
    after = snapshot(world)
    assert after["documents"] == before["documents"] and after["processed"] == before["processed"]
    assert after["objects"] == before["objects"]  # same keys, same ETags, same bytes
    # Every document overwritten exactly once under its own id: no duplicates, no strays.
    assert set(after["index"]) == set(before["index"])
    for doc_id, (source, version) in before["index"].items():
        new_source, new_version = after["index"][doc_id]
        assert new_version == version + 1, doc_id
        # `processed` is the value read before the run marks it (upstream): now true for every gazette.
        assert new_source == {**source, "processed": True}, doc_id
    # Successes were redone by the new run (one more attempt); terminal failures were not selected.
    with world.conn.cursor() as cur:
        cur.execute("SELECT id, file_path FROM gazettes")
        self_keyed = {gid for gid, path in cur.fetchall() if storage.txt_key(path) == path}
    for gid, row in before["states"].items():
        if gid not in succeeded:
            assert row[2] is True and after["states"][gid] == row, gid
            continue
        expected = (*row[:3], row[3] + 1, "another-run", *row[5:])
        if gid in self_keyed:
            # A `.txt` gazette's text key is its own key (upstream's with_suffix): the first run replaced
            # the source with its UTF-8 text, so the rerun reads that (a cp1252 file grows). Reported.
            expected = (*expected[:5], after["states"][gid][5], *expected[6:])
        assert after["states"][gid] == expected, gid


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
