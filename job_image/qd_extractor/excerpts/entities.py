"""Entity tagging (upstream §8.2): inline `<category>…</category>` tags and `excerpt_entities`.

Per entity case, one search with upstream's query (match_phrase on each value, fvh highlight with
the category as tags) over a bounded batch of excerpt ids; every hit with a highlight gets the
highlighted text as its new `excerpt` and the case title added to `excerpt_entities`. Later cases
read the already tagged text, so an index refresh follows every case that tagged something. Then
CNPJs: each distinct match is wrapped in `<entidadecnpj>` tags and "CNPJ" is added; excerpts
without a CNPJ are not rewritten. Writes are partial updates, so the embedding score stays.
"""

from __future__ import annotations

from collections.abc import Sequence

from opensearchpy import OpenSearch

from qd_extractor.excerpts import fetch
from qd_extractor.excerpts.queries import CNPJ_TITLE, EXCERPT_FIELD, entity_search, merge_entities, tag_cnpjs
from qd_extractor.excerpts.themes import Theme
from qd_extractor.excerpts.writes import TrackedWriter


def tag_entities(client: OpenSearch, writer: TrackedWriter, theme: Theme, excerpt_ids: Sequence[str], *,
                 id_batch: int) -> int:
    """Tag `excerpt_ids`, `id_batch` at a time; return how many tag writes were made."""
    tagged = 0
    for chunk in fetch.batched(excerpt_ids, id_batch):
        for case in theme.cases:
            response = fetch.call(client.search, index=theme.index, body=entity_search(case, chunk))
            wrote = False
            for hit in response["hits"]["hits"]:
                fragments = (hit.get("highlight") or {}).get(EXCERPT_FIELD)
                if not fragments:
                    continue
                source = hit.get("_source") or {}
                writer.update(theme.index, str(hit["_id"]), {
                    "excerpt": fragments[0],
                    "excerpt_entities": merge_entities(source.get("excerpt_entities"), case.title),
                })
                wrote = True
                tagged += 1
            if wrote:
                writer.flush(refresh=True)
        for doc_id, source in fetch.sources_by_ids(client, theme.index, chunk, ["excerpt", "excerpt_entities"],
                                                   id_batch):
            text = tag_cnpjs(str(source.get("excerpt") or ""))
            if text is None:
                continue
            writer.update(theme.index, doc_id, {
                "excerpt": text,
                "excerpt_entities": merge_entities(source.get("excerpt_entities"), CNPJ_TITLE),
            })
            tagged += 1
    return tagged
