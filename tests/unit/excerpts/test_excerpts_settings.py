"""ExcerptSettings.from_env: defaults, units and errors that name the variable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from qd_core.config import ConfigError
from qd_extractor.excerpts import rerank
from qd_extractor.excerpts.app import ExcerptSettings
from qd_extractor.excerpts.themes import ThemesConfigError, shipped_path


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    model = tmp_path / "models" / "bert-base-portuguese-cased"
    model.mkdir(parents=True, exist_ok=True)
    env = {"HOME": str(tmp_path), "OPENSEARCH_HOST": "http://os:9200", "OPENSEARCH_INDEX": "querido-diario",
           "POSTGRES_HOST": "db", "POSTGRES_DB": "qd", "POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p",
           "MEMORY_LIMIT_BYTES": str(240 * 1024**2)}
    env.update(extra)
    return env


def test_defaults(tmp_path: Path) -> None:
    s = ExcerptSettings.from_env(_env(tmp_path))
    assert s.rerank_model == f"{tmp_path}/models/bert-base-portuguese-cased"  # upstream's $HOME path
    assert s.themes_path == shipped_path() and [t.index for t in s.themes] == ["ambiental", "educacao"]
    assert (s.rerank_batch_size, s.gazette_page, s.search_batch, s.search_page, s.id_batch, s.repair_page) == (
        32, 250, 250, 50, 250, 1000)
    assert (s.run_id, s.max_attempts, s.retry_terminal) == ("manual", 5, False)
    assert s.search.index == "querido-diario" and s.search.user is None
    assert s.bulk_bytes == 10 * 1024**2  # limit / 24
    assert s.options().gazette_index == "querido-diario"


def test_overrides(tmp_path: Path) -> None:
    other = tmp_path / "m"
    other.mkdir()
    themes_file = tmp_path / "t.json"
    themes_file.write_text(shipped_path().read_text(encoding="utf-8"), encoding="utf-8")
    s = ExcerptSettings.from_env(_env(tmp_path, QD_RERANK_MODEL=str(other), QD_RERANK_BATCH_SIZE="8",
                                      QD_THEMES_CONFIG=str(themes_file), QD_RUN_ID="run-7",
                                      QD_EXCERPT_SEARCH_BATCH="100", QD_RETRY_TERMINAL="true",
                                      QD_RERANK_THREADS="3"))
    assert (s.rerank_model, s.rerank_batch_size, s.themes_path, s.run_id) == (str(other), 8, themes_file, "run-7")
    assert s.search_batch == 100 and s.retry_terminal
    assert s.rerank_threads == (3, "QD_RERANK_THREADS")


@pytest.mark.parametrize(("name", "value", "needle"), [
    ("QD_RERANK_BATCH_SIZE", "0", "QD_RERANK_BATCH_SIZE=0 is below"),
    ("QD_EXCERPT_SEARCH_BATCH", "lots", "QD_EXCERPT_SEARCH_BATCH='lots' is not an integer"),
    ("QD_RERANK_MODEL", "/nowhere/model", "QD_RERANK_MODEL=/nowhere/model"),
    ("QD_RERANK_THREADS", "many", "QD_RERANK_THREADS='many' is not an integer"),  # at start-up, not at first use
    ("OPENSEARCH_INDEX", "", "OPENSEARCH_INDEX is required"),
])
def test_errors_name_the_variable(tmp_path: Path, name: str, value: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        ExcerptSettings.from_env(_env(tmp_path, **{name: value}))


def test_bad_themes_file_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"themes": [{"name": "x"}]}', encoding="utf-8")
    with pytest.raises(ThemesConfigError, match=r"bad\.json: key themes\[0\]\.index"):
        ExcerptSettings.from_env(_env(tmp_path, QD_THEMES_CONFIG=str(bad)))


def test_clamp_score_keeps_rank_feature_happy() -> None:
    assert rerank.clamp_score(0.42) == 0.42
    for bad in (0.0, -0.3, float("nan"), float("-inf"), 1e-9):
        assert rerank.clamp_score(bad) == rerank.MIN_SCORE > 0
    assert rerank.default_model_path({"HOME": "/home/gazette"}) == "/home/gazette/models/bert-base-portuguese-cased"


def test_stage_modules_do_not_import_torch() -> None:
    # Extract pods and the non-model parts must never pay for torch: only the first score imports it.
    code = ("import sys; import qd_extractor.excerpts.app, qd_extractor.excerpts.stage, qd_extractor.cli; "
            "bad = [m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules]; "
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_model_that_cannot_load_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Without sentence-transformers installed this is the ImportError; with it, the empty directory.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(rerank.RerankModelError, match=f"QD_RERANK_MODEL={tmp_path}: cannot load") as err:
        rerank.load_model(str(tmp_path))
    assert isinstance(err.value, ConfigError)
