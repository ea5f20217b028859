"""Plain-text gazettes are read locally (never sent to Tika) and transcoded to UTF-8.

Upstream calls `open(path).read()` with the platform encoding, so a Latin-1 file fails forever.
We stream: try UTF-8 first; if the file is not valid UTF-8, detect the encoding from a bounded
sample with charset-normalizer (Latin-1/cp1252 when unsure) and transcode chunk by chunk.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from charset_normalizer import from_bytes

#: Bytes read to guess a non-UTF-8 encoding.
SAMPLE_BYTES = 256 * 1024


def _is_utf8(path: Path, chunk: int) -> bool:
    decoder = codecs.getincrementaldecoder("utf-8")("strict")
    try:
        with path.open("rb") as f:
            while block := f.read(chunk):
                decoder.decode(block)
            decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def guess_encoding(path: Path) -> str:
    """The encoding of a file: utf-8 when valid, else charset-normalizer's best, else cp1252."""
    if _is_utf8(path, 1024 * 1024):
        return "utf-8"
    with path.open("rb") as f:
        sample = f.read(SAMPLE_BYTES)
    best = from_bytes(sample, cp_isolation=["cp1252", "latin_1", "iso8859_15", "utf_16", "mac_roman"]).best()
    return best.encoding if best is not None else "cp1252"


def to_utf8(source: Path, dest: Path, chunk: int) -> str:
    """Transcode `source` into UTF-8 at `dest` in chunks; return the source encoding.

    Newlines are translated as Python's text mode does (upstream reads with `open(path, "r")`,
    so `\r\n` and `\r` become `\n`); undecodable bytes become U+FFFD instead of failing.
    """
    encoding = guess_encoding(source)
    with source.open("r", encoding=encoding, errors="replace", newline=None) as src, \
            dest.open("w", encoding="utf-8", newline="") as out:
        while block := src.read(chunk):
            out.write(block)
    return encoding
