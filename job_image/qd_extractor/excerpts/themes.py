"""The themes configuration: which excerpt indexes exist, their queries and their entity cases.

The shipped `data/themes_config.json` is upstream's `config/themes_config.json` from
okfn-brasil/querido-diario-data-processing (MIT licence), byte for byte; the API reads the same file,
so it must not drift. `QD_THEMES_CONFIG` points at another copy. The file is validated at start-up
and a bad one is refused with the file and the exact key named (e.g. `themes[0].queries[3].title`),
because upstream would only fail halfway through a run, after the text extraction.

Shape: `term_sets` is a list of macro sets (OR'ed); a macro set is a list of term sets that must
co-occur (span_near, slop 20, any order); a term set is a list of synonyms (OR); each synonym is a
phrase. `stopwords` and `entities.categories` are read by nobody here (as upstream) and not checked.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qd_core import config

#: Variable naming another themes file (default: the shipped upstream copy).
THEMES_ENV = "QD_THEMES_CONFIG"
#: Name of the shipped copy inside this package's `data` folder.
SHIPPED_NAME = "themes_config.json"

TermSet = tuple[str, ...]
MacroSet = tuple[TermSet, ...]


class ThemesConfigError(config.ConfigError):
    """The themes file is missing, not JSON, or has a bad key; the message names file and key."""


@dataclasses.dataclass(frozen=True)
class ThemeQuery:
    """One subtheme: its title (the excerpt's `excerpt_subthemes` and the rerank query text)."""

    title: str
    term_sets: tuple[MacroSet, ...]

    def terms(self) -> list[str]:
        """Every phrase of the query, in file order (repeats included)."""
        return [term for macro in self.term_sets for term_set in macro for term in term_set]


@dataclasses.dataclass(frozen=True)
class EntityCase:
    """One entity: excerpts matching any value get tagged `<category>…</category>` and get `title`."""

    category: str
    title: str
    values: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Theme:
    name: str
    index: str  #: the excerpt index name (upstream: `ambiental`, `educacao`)
    queries: tuple[ThemeQuery, ...]
    cases: tuple[EntityCase, ...]


def shipped_path() -> Path:
    """The packaged copy of upstream's file."""
    return Path(str(importlib.resources.files("qd_extractor.excerpts.data") / SHIPPED_NAME))


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """`QD_THEMES_CONFIG` when set, else the shipped copy."""
    raw = config.env_opt(THEMES_ENV, env=env)
    return Path(raw) if raw else shipped_path()


def load_themes(path: Path | None = None, *, env: Mapping[str, str] | None = None) -> tuple[Theme, ...]:
    """Read and validate a themes file (default: `config_path(env)`)."""
    path = path or config_path(env)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ThemesConfigError(f"themes config {path}: cannot read it ({err.strerror or err})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ThemesConfigError(f"themes config {path}: not valid UTF-8 JSON ({err})") from None
    return parse_themes(raw, str(path))


def parse_themes(raw: Any, source: str = "<themes>") -> tuple[Theme, ...]:
    """Validate the decoded JSON; `source` names the file in errors."""
    check = _Checker(source)
    themes_raw = check.list_of(check.obj(raw, "").get("themes"), "themes", non_empty=True)
    themes: list[Theme] = []
    indexes: set[str] = set()
    for i, item in enumerate(themes_raw):
        at = f"themes[{i}]"
        obj = check.obj(item, at)
        index = check.text(obj.get("index"), f"{at}.index")
        if index in indexes:
            check.fail(f"{at}.index", f"duplicate index name {index!r}")
        indexes.add(index)
        queries = tuple(_query(check, q, f"{at}.queries[{j}]")
                        for j, q in enumerate(check.list_of(obj.get("queries"), f"{at}.queries", non_empty=True)))
        entities = check.obj(obj.get("entities"), f"{at}.entities")
        cases = tuple(_case(check, c, f"{at}.entities.cases[{j}]")
                      for j, c in enumerate(check.list_of(entities.get("cases"), f"{at}.entities.cases")))
        themes.append(Theme(name=check.text(obj.get("name"), f"{at}.name"), index=index, queries=queries,
                            cases=cases))
    return tuple(themes)


def _query(check: _Checker, raw: Any, at: str) -> ThemeQuery:
    obj = check.obj(raw, at)
    macros: list[MacroSet] = []
    for m, macro in enumerate(check.list_of(obj.get("term_sets"), f"{at}.term_sets", non_empty=True)):
        sets: list[TermSet] = []
        for s, term_set in enumerate(check.list_of(macro, f"{at}.term_sets[{m}]", non_empty=True)):
            where = f"{at}.term_sets[{m}][{s}]"
            sets.append(tuple(check.text(t, f"{where}[{k}]")
                              for k, t in enumerate(check.list_of(term_set, where, non_empty=True))))
        macros.append(tuple(sets))
    return ThemeQuery(title=check.text(obj.get("title"), f"{at}.title"), term_sets=tuple(macros))


def _case(check: _Checker, raw: Any, at: str) -> EntityCase:
    obj = check.obj(raw, at)
    values = check.list_of(obj.get("values"), f"{at}.values", non_empty=True)
    category = check.text(obj.get("category"), f"{at}.category")
    if not category.replace("_", "").isalnum():  # it becomes an inline tag name: <category>
        check.fail(f"{at}.category", f"{category!r} is not a valid tag name (letters, digits, _)")
    return EntityCase(category=category, title=check.text(obj.get("title"), f"{at}.title"),
                      values=tuple(check.text(v, f"{at}.values[{k}]") for k, v in enumerate(values)))


class _Checker:
    """Type checks that raise ThemesConfigError naming the file and the key path."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, at: str, problem: str) -> None:
        raise ThemesConfigError(f"themes config {self.source}: key {at or '<root>'}: {problem}")

    def obj(self, value: Any, at: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(at, f"must be an object, got {_kind(value)}")
        assert isinstance(value, dict)
        return value

    def list_of(self, value: Any, at: str, *, non_empty: bool = False) -> list[Any]:
        if not isinstance(value, list):
            self.fail(at, f"must be a list, got {_kind(value)}")
        assert isinstance(value, list)
        if non_empty and not value:
            self.fail(at, "must not be empty")
        return value

    def text(self, value: Any, at: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(at, f"must be a non-empty string, got {_kind(value)}")
        assert isinstance(value, str)
        return value


def _kind(value: Any) -> str:
    return "nothing (missing)" if value is None else f"{type(value).__name__} {json.dumps(value)[:60]}"
