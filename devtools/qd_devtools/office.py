"""DOCX and ODT documents written by hand with `zipfile`, plus a deterministic ZIP helper.

Entry order matters for libmagic: DOCX needs `[Content_Types].xml` first, ODT needs an uncompressed
`mimetype` entry first. Timestamps are fixed so the same paragraphs always give the same bytes (and MD5).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from xml.sax.saxutils import escape

_FIXED_TIME = (2024, 1, 1, 0, 0, 0)
ODT_MIME = "application/vnd.oasis.opendocument.text"

_DOCX_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
    'wordprocessingml.document.main+xml"/></Types>')
_DOCX_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    'officeDocument" Target="word/document.xml"/></Relationships>')
_ODT_MANIFEST = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" '
    'manifest:version="1.2">'
    f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{ODT_MIME}"/>'
    '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/>'
    '</manifest:manifest>')


def zip_bytes(entries: Sequence[tuple[str, bytes]], *, stored_first: bool = False) -> bytes:
    """A ZIP with fixed timestamps; with `stored_first`, the first entry is left uncompressed."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for i, (name, data) in enumerate(entries):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.compress_type = zipfile.ZIP_STORED if stored_first and i == 0 else zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buf.getvalue()


def docx_document(paragraphs: Sequence[str]) -> bytes:
    """A minimal WordprocessingML package: content types, package rels, one document part."""
    ns = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
    body = "".join(f'<w:p><w:r><w:t xml:space="preserve">{escape(p)}</w:t></w:r></w:p>' for p in paragraphs)
    document = (f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                f'<w:document xmlns:w="{ns}"><w:body>{body}</w:body></w:document>')
    return zip_bytes([("[Content_Types].xml", _DOCX_TYPES.encode()), ("_rels/.rels", _DOCX_RELS.encode()),
                      ("word/document.xml", document.encode())])


def odt_document(paragraphs: Sequence[str]) -> bytes:
    """A minimal OpenDocument text package: stored `mimetype`, manifest, content."""
    body = "".join(f"<text:p>{escape(p)}</text:p>" for p in paragraphs)
    content = ('<?xml version="1.0" encoding="UTF-8"?>\n'
               '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
               'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
               f"<office:body><office:text>{body}</office:text></office:body></office:document-content>")
    return zip_bytes([("mimetype", ODT_MIME.encode()), ("META-INF/manifest.xml", _ODT_MANIFEST.encode()),
                      ("content.xml", content.encode())], stored_first=True)
