"""Entity tagging (upstream §8.2): inline `<category>…</category>` tags and `excerpt_entities`.

Upstream runs, per entity case in order, one search (match_phrase on each value, fvh highlight with
the category as tags); every hit with a highlight gets the highlighted text as its new `excerpt` and
the case title added to `excerpt_entities`, and later cases read the already tagged text. Then CNPJs:
each distinct match is wrapped in `<entidadecnpj>` tags and "CNPJ" is added; excerpts without a CNPJ
are not rewritten. Writes here are partial updates, so the embedding score stays.

The same result in a few requests per chunk of excerpts instead of one search (and one refresh) per
case. Each excerpt is a document of its own: what a case does to it depends only on its current
text. Tagging only inserts tag tokens, so it can remove phrase matches but never create one; hence
a case that does not match an excerpt's text now cannot match it later. Round 1 is one `_msearch`
with every case over the whole chunk (matching excerpts only), plus the chunk's texts. For each
excerpt the first case with a highlight is applied, exactly as upstream's sequence would (the cases
before it changed nothing). The cases after it that also matched are searched again in the next
round, on the tagged text (after one refresh), and so on: the rounds are as many as the most tags
one excerpt receives, plus one. The final texts are known without reading them back, so the CNPJ
step needs no request of its own. A round's answer holds at most cases × `id_batch` highlighted
excerpts (about 2 KB each), plus the chunk's texts in round 1.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from opensearchpy import OpenSearch

from qd_extractor.excerpts import fetch
from qd_extractor.excerpts.queries import (
    CNPJ_TITLE,
    EXCERPT_FIELD,
    entity_search,
    ids_search,
    merge_entities,
    tag_cnpjs,
)
from qd_extractor.excerpts.themes import Theme
from qd_extractor.excerpts.writes import TrackedWriter


def tag_entities(client: OpenSearch, writer: TrackedWriter, theme: Theme, excerpt_ids: Sequence[str], *,
                 id_batch: int) -> int:
    """Tag `excerpt_ids`, `id_batch` at a time; return how many tag writes were made."""
    return sum(_tag_chunk(client, writer, theme, list(chunk)) for chunk in fetch.batched(excerpt_ids, id_batch))


def _tag_chunk(client: OpenSearch, writer: TrackedWriter, theme: Theme, chunk: list[str]) -> int:
    texts: dict[str, str] = {}
    entities: dict[str, Any] = {}
    todo: dict[int, list[str]] = {pos: chunk for pos in range(len(theme.cases))}
    first = True
    tagged = 0
    while todo or first:
        positions = sorted(todo)
        bodies = [entity_search(theme.cases[pos], todo[pos], only_matches=True) for pos in positions]
        if first:
            bodies.append(ids_search(chunk, ["excerpt", "excerpt_entities"]))
        responses = fetch.msearch(client, theme.index, bodies)
        if first:
            for hit in responses.pop()["hits"]["hits"]:
                source = hit.get("_source") or {}
                texts[str(hit["_id"])] = str(source.get("excerpt") or "")
                entities[str(hit["_id"])] = source.get("excerpt_entities")
            first = False
        applied: dict[str, int] = {}  # excerpt id -> the case applied to it in this round
        matched: dict[str, list[int]] = {}  # excerpt id -> every case with a highlight on it in this round
        for pos, response in zip(positions, responses, strict=True):
            for hit in response["hits"]["hits"]:
                fragments = (hit.get("highlight") or {}).get(EXCERPT_FIELD)
                if not fragments:
                    continue
                eid = str(hit["_id"])
                matched.setdefault(eid, []).append(pos)
                if eid in applied:
                    continue
                applied[eid] = pos
                texts[eid] = str(fragments[0])
                entities[eid] = merge_entities((hit.get("_source") or {}).get("excerpt_entities"),
                                               theme.cases[pos].title)
                writer.update(theme.index, eid, {"excerpt": texts[eid], "excerpt_entities": entities[eid]})
                tagged += 1
        todo = {}
        for eid, pos in applied.items():
            for later in matched[eid]:
                if later > pos:
                    todo.setdefault(later, []).append(eid)
        if todo:
            writer.flush(refresh=True)  # the next round reads the tagged texts
    for eid in chunk:
        text = tag_cnpjs(texts[eid]) if eid in texts else None
        if text is None:
            continue
        writer.update(theme.index, eid, {"excerpt": text,
                                         "excerpt_entities": merge_entities(entities[eid], CNPJ_TITLE)})
        tagged += 1
    return tagged
