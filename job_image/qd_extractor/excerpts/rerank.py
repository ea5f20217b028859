"""Embedding rerank (upstream §8.1) and its repair pipeline `embedding_rerank` (§8.3).

Score = the highest cosine similarity between an excerpt and any query title of its theme, which is
what upstream's `util.semantic_search(excerpt, titles, top_k=1)[0][0]["score"]` returns. The model
is upstream's `SentenceTransformer(path, model_kwargs={"low_cpu_mem_usage": True})` on the CPU,
loaded once per process; title vectors once per theme and process; identical excerpt texts are
encoded once; the rest in batches rather than one by one (the same vectors up to float rounding).
sentence-transformers (and torch) are imported only when the first score is needed, so nothing else
in the package pays for them.

Threads matter more than batching (docs/benchmarks.md): one excerpt already keeps a core at ~80 % of
its matrix-product peak, but torch starts one thread per *visible* core, and a pod with a CPU limit
below the node's core count then has its threads wait for each other at every operator's barrier
while the quota or other processes hold the core they need. So the thread count comes from
`QD_RERANK_THREADS`, else from the cgroup's CPU quota, else torch's default.

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
#: cgroup v2 quota ("max 100000" or "<quota> <period>") and the v1 pair (quota -1 = none).
CPU_MAX_V2 = Path("/sys/fs/cgroup/cpu.max")
CPU_QUOTA_V1 = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CPU_PERIOD_V1 = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")

_MODELS: dict[str, Any] = {}
_log = logging.getLogger("qd_extractor.excerpts")


def default_model_path(env: Mapping[str, str] | None = None) -> str:
    """`f"{HOME}/models/bert-base-portuguese-cased"`, upstream's path."""
    home = (os.environ if env is None else env).get("HOME") or str(Path.home())
    return f"{home}/{MODEL_SUBPATH}"


def clamp_score(value: float) -> float:
    """A score `rank_feature` accepts."""
    return value if math.isfinite(value) and value >= MIN_SCORE else MIN_SCORE


def cgroup_cpu_limit(v2: Path = CPU_MAX_V2, quota_v1: Path = CPU_QUOTA_V1,
                     period_v1: Path = CPU_PERIOD_V1) -> float | None:
    """The container's CPU limit in cores (quota / period), or None when there is none or no cgroup."""
    try:
        quota, period = v2.read_text(encoding="ascii").split()[:2]
    except (OSError, ValueError):
        try:
            quota, period = (f.read_text(encoding="ascii").strip() for f in (quota_v1, period_v1))
        except OSError:
            return None
    try:
        cores = int(quota) / int(period)
    except (ValueError, ZeroDivisionError):  # "max", or garbage
        return None
    return cores if cores > 0 else None  # v1 says "no limit" with -1


def rerank_threads(env: Mapping[str, str] | None = None, cpu_limit: float | None = None) -> tuple[int | None, str]:
    """torch intra-op threads and where the number comes from; None = leave torch's default.

    QD_RERANK_THREADS (default 0 = automatic): N ≥ 1 is used as is; 0 takes the CPU limit rounded
    down (at least 1, at most the cores this process may run on), so a 1-CPU pod runs 1 thread.
    """
    wanted = config.env_int("QD_RERANK_THREADS", 0, minimum=0, maximum=1024, env=env)
    if wanted:
        return wanted, "QD_RERANK_THREADS"
    if cpu_limit is None:
        cpu_limit = cgroup_cpu_limit()
    if cpu_limit is None:
        return None, "torch default"
    return max(1, min(int(cpu_limit), len(os.sched_getaffinity(0)))), "cgroup cpu limit"


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
    """Upstream's embedding score: batched, deduplicated encoding on a thread count fit for the pod.

    `threads`: None reads QD_RERANK_THREADS / the cgroup (`rerank_threads`), 0 keeps torch's default.
    """

    def __init__(self, model_path: str, batch_size: int = 32, threads: int | None = None,
                 threads_source: str = "argument") -> None:
        self.model_path = model_path
        self.batch_size = batch_size
        self.threads, self.threads_source = (rerank_threads() if threads is None
                                             else (threads or None, threads_source))
        self._titles: dict[tuple[str, ...], Any] = {}
        self._threads_applied = False

    def _model(self) -> Any:
        model = load_model(self.model_path)
        if not self._threads_applied:
            import torch

            if self.threads is not None:
                torch.set_num_threads(self.threads)  # process-wide; only this stage runs torch
            self._threads_applied = True
            logs.event(_log, "rerank_threads", "rerank torch threads", threads=torch.get_num_threads(),
                       source=self.threads_source, batch_size=self.batch_size)
        return model

    def score(self, theme: Theme, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        model = self._model()
        from sentence_transformers import util

        key = tuple(q.title for q in theme.queries)
        titles = self._titles.get(key)
        if titles is None:
            titles = self._titles[key] = model.encode(list(key), convert_to_tensor=True, show_progress_bar=False)
        unique = list(dict.fromkeys(texts))  # excerpts repeat (boilerplate clauses): encode each text once
        vectors = model.encode(unique, batch_size=self.batch_size, convert_to_tensor=True, show_progress_bar=False)
        # = semantic_search(vectors, titles, top_k=1)[i][0]["score"]: the same cosines, without its dicts
        best = util.cos_sim(vectors, titles).max(dim=1).values.tolist()
        by_text = dict(zip(unique, best, strict=True))
        return [clamp_score(float(by_text[text])) for text in texts]


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
