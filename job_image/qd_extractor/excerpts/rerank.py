"""Embedding rerank (upstream §8.1) and its repair pipeline `embedding_rerank` (§8.3).

Score = the highest cosine similarity between an excerpt and any query title of its theme, which is
what upstream's `util.semantic_search(excerpt, titles, top_k=1)[0][0]["score"]` returns. The model
is upstream's `SentenceTransformer(path, model_kwargs={"low_cpu_mem_usage": True})` on the CPU,
loaded once per process; title vectors once per theme; excerpts are encoded in batches rather than
one by one (the same vectors up to float rounding). sentence-transformers (and torch) are imported
only when the first score is needed, so nothing else in the package pays for them.

`rank_feature` rejects zero, negative and NaN values, which would fail the whole write; such a score
(upstream never guarded against it) is stored as `MIN_SCORE` instead, ranking below every real one.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from opensearchpy import OpenSearch

from qd_core import config
from qd_extractor import logs
from qd_extractor.excerpts import fetch
from qd_extractor.excerpts.queries import missing_score_search
from qd_extractor.excerpts.themes import Theme
from qd_extractor.excerpts.writes import TrackedWriter

#: Stored instead of a score `rank_feature` would reject (<= 0 or NaN). Any positive normal float is
#: accepted; this one sits far below real cosine similarities.
MIN_SCORE = 1e-6
#: Upstream's model location below $HOME (baked into its image by `SentenceTransformer(...).save`).
MODEL_SUBPATH = "models/bert-base-portuguese-cased"
#: The repair pipeline's scroll keep-alive: long enough to score a whole page between two requests.
REPAIR_KEEP_ALIVE = "30m"

_MODELS: dict[str, Any] = {}
_log = logging.getLogger("qd_extractor.excerpts")


def default_model_path(env: Mapping[str, str] | None = None) -> str:
    """`f"{HOME}/models/bert-base-portuguese-cased"`, upstream's path."""
    home = (os.environ if env is None else env).get("HOME") or str(Path.home())
    return f"{home}/{MODEL_SUBPATH}"


def clamp_score(value: float) -> float:
    """A score `rank_feature` accepts."""
    return value if math.isfinite(value) and value >= MIN_SCORE else MIN_SCORE


class RerankModelError(config.ConfigError):
    """The model (or sentence-transformers itself) cannot be loaded: the run stops, no gazette is failed."""


def load_model(path: str) -> Any:
    """The SentenceTransformer at `path`, loaded once per process."""
    model = _MODELS.get(path)
    if model is None:
        try:
            from sentence_transformers import SentenceTransformer

            model = SentenceTransformer(path, device="cpu", model_kwargs={"low_cpu_mem_usage": True})
        except Exception as err:
            raise RerankModelError(f"QD_RERANK_MODEL={path}: cannot load the model "
                                   f"({type(err).__name__}: {err})") from err
        _MODELS[path] = model
        logs.event(_log, "model_loaded", "rerank model loaded", model_path=path)
    return model


class Scorer(Protocol):
    def score(self, theme: Theme, texts: Sequence[str]) -> list[float]:
        """One score per text, in order."""


class EmbeddingScorer:
    """Upstream's embedding score with batched encoding."""

    def __init__(self, model_path: str, batch_size: int = 32) -> None:
        self.model_path = model_path
        self.batch_size = batch_size
        self._titles: dict[str, Any] = {}

    def score(self, theme: Theme, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        model = load_model(self.model_path)
        from sentence_transformers import util

        titles = self._titles.get(theme.index)
        if titles is None:
            titles = self._titles[theme.index] = model.encode(
                [q.title for q in theme.queries], convert_to_tensor=True, show_progress_bar=False)
        vectors = model.encode(list(texts), batch_size=self.batch_size, convert_to_tensor=True,
                               show_progress_bar=False)
        best = util.semantic_search(vectors, titles, top_k=1)
        return [clamp_score(float(hits[0]["score"])) for hits in best]


def rerank_excerpts(client: OpenSearch, writer: TrackedWriter, scorer: Scorer, theme: Theme,
                    excerpt_ids: Sequence[str], *, id_batch: int) -> int:
    """Score `excerpt_ids` (texts fetched `id_batch` at a time, `excerpt` only); return how many."""
    scored = 0
    for chunk in fetch.batched(excerpt_ids, id_batch):
        found = list(fetch.sources_by_ids(client, theme.index, chunk, ["excerpt"], id_batch))
        if not found:
            continue
        scores = scorer.score(theme, [str(source.get("excerpt") or "") for _, source in found])
        for (doc_id, _), score in zip(found, scores, strict=True):
            writer.update(theme.index, doc_id, {"excerpt_embedding_score": score})
        scored += len(found)
    return scored


def repair_theme(client: OpenSearch, writer: TrackedWriter, scorer: Scorer, theme: Theme, *,
                 page_size: int, id_batch: int) -> int:
    """Score every excerpt of `theme` that has no score, a page of ids at a time; return how many."""
    if not client.indices.exists(index=theme.index):
        return 0
    body = missing_score_search(page_size)
    page: list[str] = []
    scored = 0
    for hit in fetch.scroll_hits(client, theme.index, body, keep_alive=REPAIR_KEEP_ALIVE):
        page.append(str(hit["_id"]))
        if len(page) >= page_size:
            scored += _repair_page(client, writer, scorer, theme, page, id_batch)
            page = []
    if page:
        scored += _repair_page(client, writer, scorer, theme, page, id_batch)
    return scored


def _repair_page(client: OpenSearch, writer: TrackedWriter, scorer: Scorer, theme: Theme, ids: list[str],
                 id_batch: int) -> int:
    scored = rerank_excerpts(client, writer, scorer, theme, ids, id_batch=id_batch)
    writer.flush()
    logs.event(_log, "rerank_repair_page", "excerpts scored", index_name=theme.index, scored=scored,
               failed=len(writer.failed))
    return scored
