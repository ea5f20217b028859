"""Realistic gazette fixtures of every file type the pipeline meets, deterministic for a given seed.

Each function returns a `Fixture`: the bytes (or a path, for big files), the extension to use in the
bucket key, the MIME type libmagic reports for it, and a phrase the extracted text must contain (None
when upstream extracts nothing: HTML, ZIP, empty, corrupt and image-only files).
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from qd_devtools import ama
from qd_devtools.office import docx_document, odt_document, zip_bytes
from qd_devtools.pdf import lines_per_page, write_big_pdf, write_image_pdf, write_text_pdf
from qd_devtools.territories import AL_ASSOCIATION_ID, ES_ASSOCIATION_ID, Territory, read_territories
from qd_devtools.text import paginate, paragraphs, wrap
from qd_devtools.word97 import word97_document

PDF = "application/pdf"
DOC = "application/msword"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ODT = "application/vnd.oasis.opendocument.text"


@dataclass(frozen=True)
class Fixture:
    """One gazette file plus what the pipeline should make of it."""

    kind: str
    extension: str  # used in the bucket key; '' for none
    mime: str  # what libmagic's from_file(mime=True) reports
    phrase: str | None  # must appear in the extracted text; None if nothing is extracted
    territory_id: str
    date: dt.date
    seed: int
    content: bytes | None = None
    path: Path | None = None
    segments: tuple[str, ...] = ()  # territory names the AMA segmenter yields (association kinds)

    def open(self) -> BinaryIO:
        """A binary file object over the content (caller closes it)."""
        if self.path is not None:
            return self.path.open("rb")
        return io.BytesIO(self.content or b"")

    def read_bytes(self) -> bytes:
        """The whole content (avoid for big path-backed fixtures)."""
        return self.path.read_bytes() if self.path is not None else (self.content or b"")

    @property
    def size(self) -> int:
        """File size in bytes."""
        return self.path.stat().st_size if self.path is not None else len(self.content or b"")

    @property
    def file_url(self) -> str:
        """A fake municipal URL (never fetched); its SHA-1 names the object, as in the scrapers."""
        slug = re.sub(r"[^a-z0-9]+", "", self.territory_id.lower())
        suffix = f".{self.extension}" if self.extension else ""
        return (f"https://diariooficial.municipio-{slug}.gov.br/edicoes/{self.date.isoformat()}/"
                f"{self.kind.replace('_', '-')}-{self.seed}{suffix}")

    def write_to(self, directory: Path) -> Path:
        """Write the file as `<kind>[.<ext>]` in `directory` and return its path."""
        target = directory / (f"{self.kind}.{self.extension}" if self.extension else self.kind)
        with self.open() as src, target.open("wb") as dst:
            while chunk := src.read(1 << 20):
                dst.write(chunk)
        return target


@functools.cache
def _territories() -> tuple[Territory, ...]:
    return tuple(read_territories())


def _context(kind: str, seed: int, territory_id: str | None = None) -> tuple[Territory, dt.date, random.Random]:
    """Pick a territory (mostly Alagoas) and a 2023-2024 date from the kind and seed."""
    rng = random.Random(f"{kind}:{seed}")
    municipalities = [t for t in _territories() if not t.is_association]
    if territory_id is not None:
        territory = next(t for t in _territories() if t.id == territory_id)
    elif rng.random() < 0.7:
        territory = rng.choice([t for t in municipalities if t.state_code == "AL"])
    else:
        territory = rng.choice([t for t in municipalities if t.state_code != "AL"])
    return territory, dt.date(2023, 1, 1) + dt.timedelta(days=rng.randrange(730)), rng


def _document(territory: Territory, seed: int, phrase: str, acts: int) -> list[str]:
    """Title lines, the phrase as its own paragraph, then generated acts."""
    return [f"PREFEITURA MUNICIPAL DE {territory.name.upper()}", "DIÁRIO OFICIAL DO MUNICÍPIO", phrase,
            *paragraphs(seed, territory.name, acts)]


def text_pdf(seed: int = 0) -> Fixture:
    """A multi-page text PDF with Portuguese accents."""
    territory, date, _ = _context("text_pdf", seed)
    phrase = "Aviso de licitação da Secretaria de Educação para a Escola Municipal São José"
    buf = io.BytesIO()
    write_text_pdf(buf, paginate(wrap(_document(territory, seed, phrase, 14)), lines_per_page(10)))
    return Fixture("text_pdf", "pdf", PDF, phrase, territory.id, date, seed, buf.getvalue())


def docx(seed: int = 0) -> Fixture:
    """A WordprocessingML document written by hand."""
    territory, date, _ = _context("docx", seed)
    phrase = "Extrato de contrato: reforma da Escola São João, Secretaria de Educação"
    content = docx_document(_document(territory, seed, phrase, 6))
    return Fixture("docx", "docx", DOCX, phrase, territory.id, date, seed, content)


def odt(seed: int = 0) -> Fixture:
    """An OpenDocument text written by hand."""
    territory, date, _ = _context("odt", seed)
    phrase = "Portaria de nomeação na Secretaria Municipal de Saúde de São Cristóvão"
    content = odt_document(_document(territory, seed, phrase, 6))
    return Fixture("odt", "odt", ODT, phrase, territory.id, date, seed, content)


def doc(seed: int = 0) -> Fixture:
    """A legacy Word 97 binary document (pure-Python writer, see `word97`)."""
    territory, date, _ = _context("doc", seed)
    phrase = "Decreto de situação de emergência: Secretaria de Educação de São Pedro"
    content = word97_document(_document(territory, seed, phrase, 6))
    return Fixture("doc", "doc", DOC, phrase, territory.id, date, seed, content)


def _plain(territory: Territory, seed: int, phrase: str) -> str:
    return "\n".join(wrap(_document(territory, seed, phrase, 5), 80))


def txt_utf8(seed: int = 0) -> Fixture:
    """A UTF-8 plain-text gazette."""
    territory, date, _ = _context("txt_utf8", seed)
    phrase = "Edital de convocação para audiência pública sobre a licitação da merenda"
    content = _plain(territory, seed, phrase).encode("utf-8")
    return Fixture("txt_utf8", "txt", "text/plain", phrase, territory.id, date, seed, content)


def txt_latin1(seed: int = 0) -> Fixture:
    """A cp1252/Latin-1 plain-text gazette (not valid UTF-8: upstream's default-encoding read trips on it)."""
    territory, date, _ = _context("txt_latin1", seed)
    phrase = "Resolução do Conselho Municipal de Educação sobre o calendário escolar"
    content = _plain(territory, seed, phrase).encode("cp1252")
    return Fixture("txt_latin1", "txt", "text/plain", phrase, territory.id, date, seed, content)


def _html(territory: Territory, seed: int, rng: random.Random) -> bytes:
    edition = f"<p>Edição nº {rng.randrange(100, 9999)}</p>\n"
    body = edition + "".join(f"<p>{p}</p>\n" for p in paragraphs(seed, territory.name, 3))
    return (f'<!DOCTYPE html>\n<html lang="pt-BR">\n<head><meta charset="utf-8">'
            f"<title>Diário Oficial - Prefeitura Municipal de {territory.name}</title></head>\n<body>\n"
            f"<h1>Diário Oficial do Município de {territory.name}</h1>\n{body}"
            f"<p>Página não encontrada? Acesse a seção de publicações.</p>\n</body>\n</html>\n").encode()


def html_as_pdf(seed: int = 0) -> Fixture:
    """An HTML page saved under a `.pdf` key (common in production; upstream rejects text/html)."""
    territory, date, rng = _context("html_as_pdf", seed)
    content = _html(territory, seed, rng)
    return Fixture("html_as_pdf", "pdf", "text/html", None, territory.id, date, seed, content)


def html_no_ext(seed: int = 0) -> Fixture:
    """An HTML page under a key with no extension."""
    territory, date, rng = _context("html_no_ext", seed)
    content = _html(territory, seed, rng)
    return Fixture("html_no_ext", "", "text/html", None, territory.id, date, seed, content)


def zip_archive(seed: int = 0, extension: str = "zip") -> Fixture:
    """A real ZIP holding a text PDF (upstream skips `%.zip` keys and rejects zips by MIME)."""
    inner = text_pdf(seed)
    content = zip_bytes([(f"diario-{inner.date.isoformat()}.pdf", inner.read_bytes())])
    return Fixture("zip", extension, "application/zip", None, inner.territory_id, inner.date, seed, content)


def empty(seed: int = 0) -> Fixture:
    """A zero-byte file under a `.pdf` key."""
    territory, date, _ = _context("empty", seed)
    return Fixture("empty", "pdf", "inode/x-empty", None, territory.id, date, seed, b"")


def corrupt_pdf(seed: int = 0) -> Fixture:
    """Starts like a PDF, then garbage and a truncated object: no xref, no trailer."""
    territory, date, rng = _context("corrupt_pdf", seed)
    garbage = bytes(rng.randrange(256) for _ in range(2048))
    content = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R" + garbage
    return Fixture("corrupt_pdf", "pdf", PDF, None, territory.id, date, seed, content)


def image_only_pdf(seed: int = 0) -> Fixture:
    """A scanned-looking PDF with image XObjects only (Tika without OCR returns no text)."""
    territory, date, _ = _context("image_only_pdf", seed)
    buf = io.BytesIO()
    write_image_pdf(buf, pages=2, seed=seed)
    return Fixture("image_only_pdf", "pdf", PDF, None, territory.id, date, seed, buf.getvalue())


def association(seed: int = 0) -> Fixture:
    """An AMA gazette (territory 2700000) that the upstream segmenter splits into AL municipalities."""
    _, date, _ = _context("association", seed, AL_ASSOCIATION_ID)
    buf = io.BytesIO()
    write_text_pdf(buf, ama.association_pages(ama.AL_LAYOUT, seed, date, lines_per_page(10)))
    return Fixture("association", "pdf", PDF, "PREFEITURA MUNICIPAL DE PALMEIRA DOS ÍNDIOS", AL_ASSOCIATION_ID, date,
                   seed, buf.getvalue(), segments=tuple(ama.expected_territories(ama.AL_LAYOUT)))


def association_txt(seed: int = 0) -> Fixture:
    """The same AMA gazette as plain UTF-8 text, shaped like Tika's output."""
    _, date, _ = _context("association_txt", seed, AL_ASSOCIATION_ID)
    content = ama.association_text(ama.AL_LAYOUT, seed, date, lines_per_page(10)).encode("utf-8")
    return Fixture("association_txt", "txt", "text/plain", "PREFEITURA MUNICIPAL DE PALMEIRA DOS ÍNDIOS",
                   AL_ASSOCIATION_ID, date, seed, content,
                   segments=tuple(ama.expected_territories(ama.AL_LAYOUT)))


def association_no_segmenter(seed: int = 0) -> Fixture:
    """Same layout for the Espírito Santo association (3200000), which has no upstream segmenter."""
    _, date, _ = _context("association_no_segmenter", seed, ES_ASSOCIATION_ID)
    buf = io.BytesIO()
    write_text_pdf(buf, ama.association_pages(ama.ES_LAYOUT, seed, date, lines_per_page(10)))
    return Fixture("association_no_segmenter", "pdf", PDF, "ESTADO DO ESPÍRITO SANTO",
                   ES_ASSOCIATION_ID, date, seed, buf.getvalue())


def big_pdf(path: Path, size_mb: int, seed: int = 0, *, compress: bool = False) -> Fixture:
    """A large text PDF streamed to `path` (benchmarks); memory stays bounded."""
    territory, date, _ = _context("big_pdf", seed)
    with path.open("wb") as out:
        write_big_pdf(out, size_mb * 1024 * 1024, seed=seed, compress=compress)
    return Fixture("big_pdf", "pdf", PDF, "Município", territory.id, date, seed, path=path)


KINDS: dict[str, Callable[[int], Fixture]] = {
    "text_pdf": text_pdf, "docx": docx, "odt": odt, "doc": doc, "txt_utf8": txt_utf8,
    "txt_latin1": txt_latin1, "html_as_pdf": html_as_pdf, "html_no_ext": html_no_ext, "zip": zip_archive,
    "empty": empty, "corrupt_pdf": corrupt_pdf, "image_only_pdf": image_only_pdf, "association": association,
    "association_txt": association_txt, "association_no_segmenter": association_no_segmenter,
}


def all_fixtures(seed: int = 0) -> list[Fixture]:
    """One fixture of every kind."""
    return [make(seed) for make in KINDS.values()]


def mixed_batch(n: int, seed: int = 0) -> Iterator[Fixture]:
    """`n` fixtures cycling through every kind, each with its own seed (so its own bytes and MD5)."""
    kinds = list(KINDS.values())
    for i in range(n):
        yield kinds[i % len(kinds)](seed * 100_003 + i)
