"""Rerank encoding: batched, deduplicated scores equal upstream's one-at-a-time scores; thread count from the pod."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qd_core.config import ConfigError
from qd_extractor.excerpts import rerank
from qd_extractor.excerpts.themes import load_themes, shipped_path

LONG = ("Nos termos da Lei Federal nº 9.605, de 12 de fevereiro de 1998, que dispõe sobre os crimes ambientais, "
        "a fiscalização será feita pela Secretaria Municipal de Meio Ambiente com apoio do IBAMA. ") * 8
TEXTS = [
    LONG,
    "Fica instituído o Plano Municipal de Saneamento Básico, conforme a Lei nº 11.445/2007.",
    "Contrato de prestação de serviços de internet banda larga para as escolas municipais.",
    LONG,  # the same text twice: encoded once, scored twice
    "Autoriza a supressão de vegetação nativa em área de preservação permanente mediante compensação. " * 3,
    "Contrato de prestação de serviços de internet banda larga para as escolas municipais.",
    "Nomeia servidora para o cargo de professora da rede municipal de ensino.",
]


def _cgroup(tmp_path: Path, v2: str | None = None, v1: tuple[str, str] | None = None) -> dict[str, Path]:
    paths = {"v2": tmp_path / "cpu.max", "quota_v1": tmp_path / "quota", "period_v1": tmp_path / "period"}
    if v2 is not None:
        paths["v2"].write_text(v2 + "\n", encoding="ascii")
    if v1 is not None:
        paths["quota_v1"].write_text(v1[0] + "\n", encoding="ascii")
        paths["period_v1"].write_text(v1[1] + "\n", encoding="ascii")
    return paths


@pytest.mark.parametrize(("v2", "v1", "cores"), [
    ("max 100000", None, None),                 # v2 without a limit
    ("150000 100000", None, 1.5),               # v2 limit 1500m
    (None, ("-1", "100000"), None),             # v1 without a limit
    (None, ("50000", "100000"), 0.5),           # v1 limit 500m
    (None, None, None),                         # no cgroup files at all
    ("garbage", None, None),
])
def test_cgroup_cpu_limit(tmp_path: Path, v2: str | None, v1: tuple[str, str] | None, cores: float | None) -> None:
    assert rerank.cgroup_cpu_limit(**_cgroup(tmp_path, v2, v1)) == cores


def test_threads_follow_the_cpu_limit_rounded_down() -> None:
    visible = len(os.sched_getaffinity(0))
    assert rerank.rerank_threads({}, cpu_limit=0.5) == (1, "cgroup cpu limit")  # never 0
    assert rerank.rerank_threads({}, cpu_limit=1.9) == (1, "cgroup cpu limit")  # no oversubscription
    assert rerank.rerank_threads({}, cpu_limit=10_000.0) == (visible, "cgroup cpu limit")
    assert rerank.rerank_threads({"QD_RERANK_THREADS": "3"}, cpu_limit=0.5) == (3, "QD_RERANK_THREADS")
    assert rerank.rerank_threads({"QD_RERANK_THREADS": "0"}, cpu_limit=2.0)[0] == min(2, visible)


def test_bad_thread_setting_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="QD_RERANK_THREADS"):
        rerank.rerank_threads({"QD_RERANK_THREADS": "-1"}, cpu_limit=None)
    monkeypatch.setenv("QD_RERANK_THREADS", "many")
    with pytest.raises(ConfigError, match="QD_RERANK_THREADS"):  # the scorer reads it when built
        rerank.EmbeddingScorer("/nowhere")


@pytest.fixture()
def torch_threads() -> Iterator[Any]:
    """torch, with its thread count restored afterwards (the scorer sets it process-wide)."""
    import torch

    before = torch.get_num_threads()
    yield torch
    torch.set_num_threads(before)


@pytest.mark.rerank
@pytest.mark.parametrize("batch_size", [1, 3, 32])
def test_batched_scores_equal_one_at_a_time(model_path: str, torch_threads: Any, batch_size: int) -> None:
    # Upstream §8.1: per excerpt `model.encode(text)` and `semantic_search(v, titles, top_k=1)[0][0]["score"]`.
    from sentence_transformers import util

    theme = next(t for t in load_themes(shipped_path()) if t.index == "ambiental")
    model = rerank.load_model(model_path)
    titles = model.encode([q.title for q in theme.queries], convert_to_tensor=True)
    upstream = [float(util.semantic_search(model.encode(text), titles, top_k=1)[0][0]["score"]) for text in TEXTS]

    ours = rerank.EmbeddingScorer(model_path, batch_size=batch_size, threads=1).score(theme, TEXTS)
    assert torch_threads.get_num_threads() == 1
    assert ours == pytest.approx(upstream, abs=1e-5, rel=0)
    assert ours[0] == ours[3] and ours[2] == ours[5]
    assert all(score >= rerank.MIN_SCORE for score in ours)


@pytest.mark.rerank
def test_titles_are_encoded_once_per_theme_and_duplicates_once(model_path: str, torch_threads: Any) -> None:
    theme = next(t for t in load_themes(shipped_path()) if t.index == "ambiental")
    scorer = rerank.EmbeddingScorer(model_path, threads=0)  # 0: torch's default, untouched
    model = rerank.load_model(model_path)
    calls: list[int] = []
    real_encode = model.encode

    def counting(inputs: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(len(inputs))
        return real_encode(inputs, *args, **kwargs)

    model.encode = counting
    try:
        first = scorer.score(theme, TEXTS)
        second = scorer.score(theme, TEXTS[:2])
    finally:
        del model.encode
    assert calls == [len(theme.queries), len(set(TEXTS)), 2]  # titles once, then only distinct texts
    assert second == first[:2]
    assert scorer.score(theme, []) == []
