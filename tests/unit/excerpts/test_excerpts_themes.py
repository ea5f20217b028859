"""The themes file: the shipped upstream copy, QD_THEMES_CONFIG, and errors that name file and key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from qd_core.config import ConfigError
from qd_extractor.excerpts import themes

SMALL: dict[str, Any] = {
    "themes": [{
        "name": "Teste", "index": "teste", "stopwords": [],
        "entities": {"categories": [], "cases": [
            {"category": "entidadeteste", "title": "IBAMA", "values": ["ibama"]}]},
        "queries": [{"title": "Crimes", "term_sets": [[["lei federal", "lei"], ["9.605"]], [["crimes ambientais"]]]}],
    }]
}


def _write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "themes.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def test_shipped_file_is_upstreams() -> None:
    loaded = themes.load_themes(themes.shipped_path())
    assert [(t.name, t.index) for t in loaded] == [("Políticas Ambientais", "ambiental"),
                                                   ("Tecnologias na Educação", "educacao")]
    # The counts upstream-pipeline.md §7.1 gives for upstream's file.
    assert [len(t.queries) for t in loaded] == [11, 7]
    assert [sum(len(q.terms()) for q in t.queries) for t in loaded] == [219, 452]
    assert [len(t.cases) for t in loaded] == [19, 9]
    assert loaded[0].queries[0].title == "Agricultura e Pecuária"
    assert loaded[0].queries[0].term_sets[0] == (("lei federal", "lei"), ("7.802", "7802"),
                                                 ("11 de julho de 1989", "1989", "89"))
    assert loaded[0].cases[2].title == "IBAMA" and loaded[0].cases[2].category == "entidadeambiental"
    # Byte-for-byte upstream: a trailing space inside a term is kept.
    assert "comissão nacional da biodiversidade " in loaded[0].queries[2].terms()
    assert len(themes.shipped_path().read_text(encoding="utf-8")) == 16782


def test_env_variable_selects_another_file(tmp_path: Path) -> None:
    path = _write(tmp_path, SMALL)
    assert themes.config_path({"QD_THEMES_CONFIG": str(path)}) == path
    assert themes.config_path({}) == themes.shipped_path()
    loaded = themes.load_themes(env={"QD_THEMES_CONFIG": str(path)})
    assert loaded[0].queries[0].term_sets == ((("lei federal", "lei"), ("9.605",)), (("crimes ambientais",),))
    assert loaded[0].cases[0].values == ("ibama",)


@pytest.mark.parametrize(("mutate", "key", "problem"), [
    (lambda d: d.pop("themes"), "themes", "must be a list"),
    (lambda d: d["themes"][0].pop("index"), "themes[0].index", "non-empty string"),
    (lambda d: d["themes"][0]["queries"][0].update(title=""), "themes[0].queries[0].title", "non-empty string"),
    (lambda d: d["themes"][0]["queries"][0]["term_sets"][1].append("x"),
     "themes[0].queries[0].term_sets[1][1]", "must be a list"),
    (lambda d: d["themes"][0]["queries"][0]["term_sets"][0][1].append(7),
     "themes[0].queries[0].term_sets[0][1][1]", "non-empty string"),
    (lambda d: d["themes"][0]["queries"].clear(), "themes[0].queries", "must not be empty"),
    (lambda d: d["themes"][0].pop("entities"), "themes[0].entities", "must be an object"),
    (lambda d: d["themes"][0]["entities"]["cases"][0].update(category="a b"),
     "themes[0].entities.cases[0].category", "not a valid tag name"),
    (lambda d: d["themes"].append(json.loads(json.dumps(d["themes"][0]))), "themes[1].index", "duplicate"),
])
def test_bad_key_is_named(tmp_path: Path, mutate: Any, key: str, problem: str) -> None:
    data = json.loads(json.dumps(SMALL))
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(themes.ThemesConfigError) as err:
        themes.load_themes(path)
    assert str(path) in str(err.value)
    assert f"key {key}:" in str(err.value)
    assert problem in str(err.value)
    assert isinstance(err.value, ConfigError)  # the CLI's configuration exit code


def test_unreadable_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(themes.ThemesConfigError, match="cannot read"):
        themes.load_themes(tmp_path / "missing.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(themes.ThemesConfigError, match=r"broken\.json: not valid UTF-8 JSON"):
        themes.load_themes(broken)
