"""The shared definition of "pending": upstream's predicates plus our filters."""

from __future__ import annotations

import datetime as dt

import pytest

from qd_core import config, selection
from qd_core.states import ErrorClass, Stage, is_terminal


@pytest.mark.parametrize(("raw", "mode"), [("UNPROCESSED", selection.Mode.UNPROCESSED),
                                           ("daily", selection.Mode.DAILY), (" ALL ", selection.Mode.ALL)])
def test_modes_parse(raw: str, mode: selection.Mode) -> None:
    assert selection.parse_mode(raw) is mode


def test_unknown_mode_keeps_upstream_wording_and_names_variable() -> None:
    with pytest.raises(config.ConfigError, match='EXECUTION_MODE: Execution mode "WEEKLY" is invalid'):
        selection.parse_mode("WEEKLY")


def test_default_mode_is_daily_like_upstream() -> None:
    assert selection.from_env({}).mode is selection.Mode.DAILY


def test_predicate_has_mode_zip_filter_and_terminal_exclusion() -> None:
    where, params = selection.Selection(mode=selection.Mode.UNPROCESSED).predicate()
    assert "g.processed IS FALSE" in where
    assert "NOT LIKE '%%.zip'" in where
    assert "s.terminal" in where
    assert params == {"stage": "extract"}


def test_retry_terminal_drops_the_exclusion() -> None:
    where, _ = selection.Selection(retry_terminal=True).predicate(Stage.EXCERPTS)
    assert "qd_gazette_state" not in where


def test_filters_become_parameters_not_text() -> None:
    sel = selection.Selection(mode=selection.Mode.ALL, date_from=dt.date(2024, 1, 1),
                              date_to=dt.date(2024, 1, 31), territories=("2704302", "2700000"))
    where, params = sel.predicate()
    assert "2704302" not in where
    assert params["territories"] == ["2704302", "2700000"]
    assert params["date_from"] == dt.date(2024, 1, 1)


def test_empty_date_span_is_refused() -> None:
    with pytest.raises(config.ConfigError, match="date span is empty"):
        selection.Selection(date_from=dt.date(2024, 2, 1), date_to=dt.date(2024, 1, 1))


def test_env_filters_parse_and_bad_date_is_named() -> None:
    sel = selection.from_env({"EXECUTION_MODE": "ALL", "QD_TERRITORIES": "2704302, 2700000",
                              "QD_DATE_FROM": "2024-01-01"})
    assert sel.territories == ("2704302", "2700000")
    with pytest.raises(config.ConfigError, match="QD_DATE_TO='yesterday'"):
        selection.from_env({"QD_DATE_TO": "yesterday"})


def test_page_sql_is_keyset_not_offset() -> None:
    sql, params = selection.Selection().page_sql(low=1, high=100, before=50, limit=10)
    assert "OFFSET" not in sql.upper()
    assert "g.id < %(before)s" in sql and "ORDER BY g.id DESC" in sql
    assert params["before"] == 50


def test_terminal_classes_are_about_the_file() -> None:
    assert is_terminal(ErrorClass.UNSUPPORTED_TYPE) and is_terminal(ErrorClass.NOT_FOUND)
    assert not is_terminal(ErrorClass.TIKA) and not is_terminal(ErrorClass.DATABASE)
