"""Independent re-statement of upstream's AMA split, used only as a test oracle.

Written from upstream's `split_text_by_territory` / `_normalize_territory_name` /
`get_territory_slug` with plain `re` and `slugify`, deliberately sharing no code with
`qd_extractor.segmentation`, so a test comparing the two catches any drift in our version.
"""

from __future__ import annotations

import hashlib
import re

from slugify import slugify

UPSTREAM_RE_NOMES_MUNICIPIOS = re.compile(
    r"""
    (ESTADO\sDE\sALAGOAS(?:|\s)\n{1,2}PREFEITURA\sMUNICIPAL\sDE\s)
    ((?!EDUCAÇÃO).*?\n{0,2}(?!VAMOS).*?$)
    (\n\s(?:\s|SECRETARIA|Secretaria))
    """,
    re.MULTILINE | re.VERBOSE,
)
UPSTREAM_SUFFIXES = (
    r"\s*(\/AL.*|GABINETE DO PREFEITO.*|PODER.*|http.*|PORTARIA.*|Extrato.*|ATA DE.*|SECRETARIA.*|Fundo.*"
    r"|SETOR.*|ERRATA.*|- AL.*|GABINETE.*|EXTRATO.*|SÚMULA.*|RATIFICAÇÃO.*)"
)


def upstream_slug(name: str, state_code: str) -> str:
    return slugify(f"{state_code} {name}", separator="", stopwords=["de", "d", "da", "do", "das", "dos"],
                   replacements=[("´", "'"), ("`", "'")])


def upstream_normalize(name: str) -> str:
    clean = name.strip().replace("\n", "")
    clean = re.sub(UPSTREAM_SUFFIXES, "", clean)
    return {"MAJOR IZIDORO": "MAJOR ISIDORO"}.get(clean, clean)


def upstream_split(text: str) -> dict[str, str]:
    ama_header = text.lstrip().split("\n", maxsplit=1)[0].rstrip()
    clean_text = "\n".join(re.split(re.escape(ama_header), text))
    clean_text = "\n".join(re.split(r"(Código Ide ?ntificador:\s*\w+)", clean_text)[:-1])
    raw_segments = re.split(UPSTREAM_RE_NOMES_MUNICIPIOS, clean_text)[1:]
    result: dict[str, str] = {}
    for i in range(0, len(raw_segments), 4):
        batch = raw_segments[i : i + 4]
        slug = upstream_slug(upstream_normalize(batch[1]), "AL")
        previous = result.setdefault(slug, f"{ama_header}\n")
        result[slug] = f"{previous}\n{''.join(batch)}"
    return result


def upstream_md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()
