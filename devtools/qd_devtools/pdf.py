"""A small streaming PDF writer (no third-party library), so fixtures and benchmark files are reproducible.

Objects go straight to the output file as they are made; only their byte offsets (8 bytes each) and the
page object numbers (4 bytes each) stay in memory, so a 1 GB PDF costs about 2 MB of RAM. Text uses the
standard Type1 font Helvetica with WinAnsiEncoding: strings are encoded as cp1252, which keeps Portuguese
accents extractable by PDFBox/Tika without embedding a font.
"""

from __future__ import annotations

import random
import zlib
from array import array
from collections.abc import Iterable, Sequence
from typing import BinaryIO

PAGE_WIDTH = 595  # A4, in points
PAGE_HEIGHT = 842
MARGIN = 50
_CATALOG, _PAGES = 1, 2
_XREF_ENTRY = 20  # bytes per xref line
_KIDS_CHUNK = 4096


def encode_text(text: str) -> bytes:
    """Encode one line for a PDF literal string: cp1252, with backslash and parentheses escaped."""
    raw = text.encode("cp1252", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


class PdfWriter:
    """Write a PDF page by page to a binary file object; call `close()` to write the xref and trailer."""

    def __init__(self, out: BinaryIO, *, compress: bool = False) -> None:
        self._out = out
        self._pos = 0
        self._compress = compress
        self._offsets = array("Q", [0, 0])  # index = object number - 1
        self._kids = array("L")
        self._font = 0  # written with the first text page, so image-only files have no font
        self._closed = False
        self._write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")

    @property
    def bytes_written(self) -> int:
        """Bytes written so far (the final size once closed)."""
        return self._pos

    @property
    def page_count(self) -> int:
        """Pages added so far."""
        return len(self._kids)

    def tail_size(self) -> int:
        """Upper estimate of the bytes `close()` will still write (pages tree, catalog, xref, trailer)."""
        objects = len(self._offsets) + 2
        return 300 + objects * _XREF_ENTRY + len(self._kids) * 12

    def _write(self, data: bytes) -> None:
        self._out.write(data)
        self._pos += len(data)

    def _new_id(self) -> int:
        self._offsets.append(0)
        return len(self._offsets)

    def _object(self, num: int, body: bytes) -> None:
        self._offsets[num - 1] = self._pos
        self._write(b"%d 0 obj\n%s\nendobj\n" % (num, body))

    def _stream(self, num: int, data: bytes, extra: bytes = b"", *, compress: bool | None = None) -> None:
        if self._compress if compress is None else compress:
            data = zlib.compress(data, 6)
            extra += b" /Filter /FlateDecode"
        self._offsets[num - 1] = self._pos
        self._write(b"%d 0 obj\n<< /Length %d%s >>\nstream\n" % (num, len(data), extra))
        self._write(data)
        self._write(b"\nendstream\nendobj\n")

    def _page(self, content: bytes, resources: bytes) -> None:
        content_id = self._new_id()
        self._stream(content_id, content)
        page_id = self._new_id()
        self._object(page_id, b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 %d %d] /Resources %s "
                              b"/Contents %d 0 R >>" % (_PAGES, PAGE_WIDTH, PAGE_HEIGHT, resources, content_id))
        self._kids.append(page_id)

    def add_encoded_text_page(self, lines: Iterable[bytes], *, font_size: float = 10.0) -> None:
        """Add a page of already-encoded lines (see `encode_text`); an empty line leaves a blank line."""
        if not self._font:
            self._font = self._new_id()
            self._object(self._font, b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
                                     b"/Encoding /WinAnsiEncoding >>")
        leading = font_size * 1.2
        parts = [b"BT\n/F1 %.1f Tf\n%.2f TL\n%d %d Td\n" % (font_size, leading, MARGIN,
                                                          PAGE_HEIGHT - MARGIN)]
        for line in lines:
            parts.append(b"(%s) Tj T*\n" % line if line else b"T*\n")
        parts.append(b"ET\n")
        self._page(b"".join(parts), b"<< /Font << /F1 %d 0 R >> >>" % self._font)

    def add_text_page(self, lines: Iterable[str], *, font_size: float = 10.0) -> None:
        """Add a page of text lines (cp1252-encodable; other characters become `?`)."""
        self.add_encoded_text_page((encode_text(line) for line in lines), font_size=font_size)

    def add_image_page(self, width: int, height: int, pixels: bytes, *, rgb: bool = False) -> None:
        """Add a page holding only a raw image XObject (8 bits per component): no text operators."""
        components = 3 if rgb else 1
        if len(pixels) != width * height * components:
            raise ValueError("pixel buffer does not match width x height x components")
        image_id = self._new_id()
        space = b"/DeviceRGB" if rgb else b"/DeviceGray"
        self._stream(image_id, pixels, b" /Type /XObject /Subtype /Image /Width %d /Height %d "
                                       b"/ColorSpace %s /BitsPerComponent 8" % (width, height, space),
                     compress=True)
        box_w = PAGE_WIDTH - 2 * MARGIN
        box_h = min(PAGE_HEIGHT - 2 * MARGIN, box_w * height // width)
        content = b"q\n%d 0 0 %d %d %d cm\n/Im1 Do\nQ\n" % (box_w, box_h, MARGIN, PAGE_HEIGHT - MARGIN - box_h)
        self._page(content, b"<< /XObject << /Im1 %d 0 R >> >>" % image_id)

    def close(self) -> None:
        """Write the page tree, catalog, cross-reference table and trailer (streamed in chunks)."""
        if self._closed:
            return
        self._closed = True
        self._offsets[_PAGES - 1] = self._pos
        self._write(b"%d 0 obj\n<< /Type /Pages /Count %d /Kids [" % (_PAGES, len(self._kids)))
        for start in range(0, len(self._kids), _KIDS_CHUNK):
            self._write(b"".join(b"%d 0 R " % k for k in self._kids[start:start + _KIDS_CHUNK]))
        self._write(b"] >>\nendobj\n")
        self._object(_CATALOG, b"<< /Type /Catalog /Pages %d 0 R >>" % _PAGES)
        xref_at = self._pos
        count = len(self._offsets) + 1
        self._write(b"xref\n0 %d\n0000000000 65535 f \n" % count)
        for start in range(0, len(self._offsets), _KIDS_CHUNK):
            chunk = self._offsets[start:start + _KIDS_CHUNK]
            self._write(b"".join(b"%010d 00000 n \n" % off for off in chunk))
        self._write(b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
                    % (count, _CATALOG, xref_at))
        self._out.flush()


def lines_per_page(font_size: float) -> int:
    """How many lines of `font_size` fit between the top and bottom margins."""
    return int((PAGE_HEIGHT - 2 * MARGIN) // (font_size * 1.2))


def write_text_pdf(out: BinaryIO, pages: Sequence[Sequence[str]], *, compress: bool = False,
                   font_size: float = 10.0) -> int:
    """Write a whole text PDF (one list of lines per page); return its size in bytes."""
    writer = PdfWriter(out, compress=compress)
    for lines in pages:
        writer.add_text_page(lines, font_size=font_size)
    writer.close()
    return writer.bytes_written


def scanned_pixels(width: int, height: int, seed: int) -> bytes:
    """A grey page that looks like a scan: paper noise plus dark word-shaped blocks on text lines."""
    rng = random.Random(seed)
    rows: list[bytes] = []
    line_height, gap = 9, 7
    for y in range(height):
        in_line = (y % (line_height + gap)) < line_height and 30 < y < height - 30
        row = bytearray(rng.randrange(232, 256) for _ in range(width))
        if in_line:
            line_rng = random.Random(seed * 7919 + y // (line_height + gap))
            x = 30
            while x < width - 60:
                word = line_rng.randrange(12, 60)
                for i in range(x, min(x + word, width - 30)):
                    row[i] = rng.randrange(20, 90)
                x += word + line_rng.randrange(6, 14)
        rows.append(bytes(row))
    return b"".join(rows)


def write_image_pdf(out: BinaryIO, *, pages: int = 2, seed: int = 0, width: int = 425,
                    height: int = 550) -> int:
    """Write an image-only PDF (scanned-looking pages, no text layer at all); return its size."""
    writer = PdfWriter(out)
    for page in range(pages):
        writer.add_image_page(width, height, scanned_pixels(width, height, seed + page))
    writer.close()
    return writer.bytes_written


def write_big_pdf(out: BinaryIO, size_bytes: int, *, seed: int = 0, compress: bool = False,
                  font_size: float = 7.0) -> int:
    """Stream pages of realistic gazette text until the file is about `size_bytes`; return the size.

    Memory stays bounded: a pool of pre-encoded lines is reused, each page is written and dropped.
    """
    from qd_devtools.text import line_pool

    pool = [encode_text(line) for line in line_pool(seed, width=120)]
    rng = random.Random(seed)
    per_page = lines_per_page(font_size)
    writer = PdfWriter(out, compress=compress)
    page_estimate = 0
    while writer.page_count == 0 or writer.bytes_written + writer.tail_size() + page_estimate <= size_bytes:
        before = writer.bytes_written
        writer.add_encoded_text_page(rng.choices(pool, k=per_page), font_size=font_size)
        page_estimate = writer.bytes_written - before
    writer.close()
    return writer.bytes_written
