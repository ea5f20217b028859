"""Association gazettes (`XX00000`) in the layout the upstream AMA segmenter parses, and a replica of it.

Layout (upstream-pipeline.md §5): every page starts with the same header line; each publication starts
with `ESTADO DE ALAGOAS` / `PREFEITURA MUNICIPAL DE <NAME>` / blank line / `SECRETARIA ...` and ends with
`Código Identificador:<code>`; text after the last identifier is dropped by the segmenter. The replica
(`upstream_split`) copies the upstream regexes so tests can check which municipalities come out.
"""

from __future__ import annotations

import datetime as dt
import random
import re
from dataclasses import dataclass

from qd_devtools.text import format_date, paragraphs, wrap

RE_NOMES_MUNICIPIOS = re.compile(
    r"""
(ESTADO\sDE\sALAGOAS(?:|\s)\n{1,2}PREFEITURA\sMUNICIPAL\sDE\s)
((?!EDUCAÇÃO).*?\n{0,2}(?!VAMOS).*?$)
(\n\s(?:\s|SECRETARIA|Secretaria))
""",
    re.MULTILINE | re.VERBOSE,
)
RE_NAME_SUFFIXES = (r"\s*(\/AL.*|GABINETE DO PREFEITO.*|PODER.*|http.*|PORTARIA.*|Extrato.*|ATA DE.*|"
                    r"SECRETARIA.*|Fundo.*|SETOR.*|ERRATA.*|- AL.*|GABINETE.*|EXTRATO.*|SÚMULA.*|"
                    r"RATIFICAÇÃO.*)")
NAME_FIXUPS = {"MAJOR IZIDORO": "MAJOR ISIDORO"}


@dataclass(frozen=True)
class Publication:
    """One municipality's publication: the name as printed, the real territory name, its acts."""

    printed_name: str
    territory_name: str
    secretaria: str


@dataclass(frozen=True)
class AssociationLayout:
    """What differs between states: the header wording, the state line, the publications."""

    state_line: str
    header_template: str  # formatted with date= and edition=
    publications: tuple[Publication, ...]


AL_LAYOUT = AssociationLayout(
    state_line="ESTADO DE ALAGOAS",
    header_template="Alagoas, {date} • Diário Oficial dos Municípios do Estado de Alagoas • ANO XI | Nº {edition}",
    publications=(
        Publication("MACEIÓ", "Maceió", "EDUCAÇÃO"),
        Publication("MAJOR IZIDORO", "Major Isidoro", "ADMINISTRAÇÃO"),
        Publication("PENEDO - AL", "Penedo", "SAÚDE"),
        Publication("MACEIÓ", "Maceió", "FINANÇAS"),
        Publication("PALMEIRA DOS ÍNDIOS", "Palmeira dos Índios", "ASSISTÊNCIA SOCIAL"),
    ),
)
ES_LAYOUT = AssociationLayout(
    state_line="ESTADO DO ESPÍRITO SANTO",
    header_template="Espírito Santo, {date} • Diário Oficial dos Municípios do Espírito Santo • ANO VIII | "
                    "Nº {edition}",
    publications=(
        Publication("VILA VELHA", "Vila Velha", "EDUCAÇÃO"),
        Publication("CARIACICA", "Cariacica", "SAÚDE"),
        Publication("VILA VELHA", "Vila Velha", "OBRAS"),
    ),
)


def expected_territories(layout: AssociationLayout) -> list[str]:
    """Territory names in first-appearance order (what the segmenter should produce)."""
    return list(dict.fromkeys(p.territory_name for p in layout.publications))


def _blocks(layout: AssociationLayout, seed: int) -> list[list[str]]:
    """Lines grouped in blocks that must not be split across pages."""
    rng = random.Random(seed)
    blocks: list[list[str]] = [["SUMÁRIO"], *([f"Prefeitura Municipal de {p.territory_name}"]
                                               for p in layout.publications), [""]]
    for i, pub in enumerate(layout.publications):
        blocks.append([layout.state_line, f"PREFEITURA MUNICIPAL DE {pub.printed_name}", "",
                       f"SECRETARIA MUNICIPAL DE {pub.secretaria}"])
        acts = paragraphs(seed * 100 + i, pub.territory_name, rng.randrange(2, 4))
        blocks.extend([line] for line in wrap(acts))
        blocks.extend([["Publicado por:"], [rng.choice(["Ana Lúcia Gonçalves", "José Antônio da Silva"])],
                       [f"Código Identificador:{rng.getrandbits(40):010X}"], [""]])
    blocks.append(["Matérias enviadas pelos municípios e publicadas sob responsabilidade dos órgãos emissores."])
    return blocks


def header_line(layout: AssociationLayout, date: dt.date, edition: int) -> str:
    """The line repeated at the top of every page."""
    return layout.header_template.format(date=format_date(date.day, date.month, date.year), edition=edition)


def association_pages(layout: AssociationLayout, seed: int, date: dt.date, per_page: int) -> list[list[str]]:
    """Pages of lines, each starting with the header line; a publication's opening block stays together."""
    header = header_line(layout, date, 1000 + seed % 9000)
    pages: list[list[str]] = [[header]]
    for block in _blocks(layout, seed):
        if len(pages[-1]) + len(block) > per_page:
            pages.append([header])
        pages[-1].extend(block)
    return pages


def association_text(layout: AssociationLayout, seed: int, date: dt.date, per_page: int = 60) -> str:
    """The plain-text variant: the same pages, shaped like Tika's output (blank lines between pages)."""
    return "".join("\n".join(page) + "\n\n\n" for page in association_pages(layout, seed, date, per_page))


def normalise_name(raw: str) -> str:
    """Upstream name clean-up: strip, join lines, drop known suffixes, then the fix-up map."""
    name = re.sub(RE_NAME_SUFFIXES, "", raw.strip().replace("\n", ""))
    return NAME_FIXUPS.get(name, name)


def upstream_split(text: str) -> dict[str, str]:
    """Replica of `split_text_by_territory` keyed by normalised printed name (upstream keys by slug)."""
    ama_header = text.lstrip().split("\n", 1)[0].rstrip()
    text = "\n".join(re.split(re.escape(ama_header), text))
    text = "\n".join(re.split(r"(Código Ide ?ntificador:\s*\w+)", text)[:-1])
    parts = re.split(RE_NOMES_MUNICIPIOS, text)[1:]
    out: dict[str, str] = {}
    for i in range(0, len(parts) - 3, 4):
        batch = parts[i:i + 4]
        name = normalise_name(batch[1])
        out[name] = out.get(name, f"{ama_header}\n") + "\n" + "".join(batch)
    return out


def upstream_slug(name: str, state_code: str) -> str:
    """`slugify(f"{state_code} {name}")` with the upstream stopwords and replacements."""
    from slugify import slugify

    return str(slugify(f"{state_code} {name}", separator="", stopwords=["de", "d", "da", "do", "das", "dos"],
                       replacements=[["\u00b4", "'"], ["`", "'"]]))
