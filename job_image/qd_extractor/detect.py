"""Type detection by content (libmagic), never by key.

Upstream's keys lie: HTML is saved as `.pdf`, and many keys have no extension. libmagic reads
only the first bytes of the file. The supported set is upstream's; anything else is a terminal
"unsupported type" unless the operator adds it with QD_EXTRA_MIME_TYPES (e.g. text/html).
"""

from __future__ import annotations

from pathlib import Path

import magic

PDF = "application/pdf"
DOC = "application/msword"
ODT = "application/vnd.oasis.opendocument.text"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
TEXT = "text/plain"
ZIP = "application/zip"

#: Sent to Tika, as upstream.
TIKA_TYPES = frozenset({PDF, DOC, ODT, DOCX})


class UnsupportedTypeError(Exception):
    """The file's content is of a type we do not extract (terminal)."""

    def __init__(self, mime: str, detail: str = "") -> None:
        super().__init__(f"Unsupported file type: {mime}{detail}")
        self.mime = mime


def mime_of(path: Path) -> str:
    """libmagic's MIME type of the file's content."""
    return str(magic.from_file(str(path), mime=True))


def classify(path: Path, size: int, extra_types: frozenset[str] = frozenset()) -> str:
    """Return the MIME type to process, or raise UnsupportedTypeError.

    Order as upstream: a zip is refused first (it could hold anything), then the supported set.
    """
    if size == 0:
        raise UnsupportedTypeError("inode/x-empty", " (empty file)")
    mime = mime_of(path)
    if mime == ZIP:
        raise UnsupportedTypeError(ZIP)
    if mime in TIKA_TYPES or mime == TEXT or mime in extra_types:
        return mime
    raise UnsupportedTypeError(mime)
