"""Settings errors name the variable, so a bad config stops at start-up with a clear reason."""

from __future__ import annotations

import pytest

from qd_core import config, db


def test_missing_required_names_the_variable() -> None:
    with pytest.raises(config.ConfigError, match="POSTGRES_HOST is required"):
        db.DatabaseSettings.from_env({"POSTGRES_DB": "x", "POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p"})


def test_empty_counts_as_missing() -> None:
    with pytest.raises(config.ConfigError, match="STORAGE_BUCKET is required"):
        config.env_str("STORAGE_BUCKET", env={"STORAGE_BUCKET": "  "})


@pytest.mark.parametrize(("raw", "message"), [("abc", "is not an integer"), ("0", "below the minimum 1"),
                                              ("70000", "above the maximum 65535")])
def test_bad_port_is_named(raw: str, message: str) -> None:
    env = {"POSTGRES_HOST": "h", "POSTGRES_PORT": raw, "POSTGRES_DB": "d", "POSTGRES_USER": "u",
           "POSTGRES_PASSWORD": "p"}
    with pytest.raises(config.ConfigError, match=f"POSTGRES_PORT.*{message}"):
        db.DatabaseSettings.from_env(env)


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("TRUE", True), ("1", True), ("no", False),
                                            ("False", False)])
def test_our_booleans_accept_common_spellings(raw: str, value: bool) -> None:
    assert config.env_bool("QD_RETRY_TERMINAL", not value, env={"QD_RETRY_TERMINAL": raw}) is value


def test_bad_boolean_is_named() -> None:
    with pytest.raises(config.ConfigError, match="QD_RETRY_TERMINAL='maybe'"):
        config.env_bool("QD_RETRY_TERMINAL", False, env={"QD_RETRY_TERMINAL": "maybe"})


@pytest.mark.parametrize(("name", "raw", "value"), [
    ("USE_RELATIVE_FILE_PATHS", "true", True), ("USE_RELATIVE_FILE_PATHS", "True", True),
    ("USE_RELATIVE_FILE_PATHS", "FALSE", False), ("DEBUG", "1", True), ("DEBUG", "0", False)])
def test_upstream_flags_use_upstream_spelling(name: str, raw: str, value: bool) -> None:
    on, off = ("1", "0") if name == "DEBUG" else ("true", "false")
    assert config.env_upstream_flag(name, not value, on=on, off=off, env={name: raw}) is value


@pytest.mark.parametrize(("name", "raw"), [("USE_RELATIVE_FILE_PATHS", "1"), ("USE_RELATIVE_FILE_PATHS", "yes"),
                                           ("DEBUG", "true")])
def test_upstream_flag_spelled_otherwise_stops_instead_of_diverging(name: str, raw: str) -> None:
    """Upstream would read these as off; guessing "on" would change every URL, so we refuse."""
    on, off = ("1", "0") if name == "DEBUG" else ("true", "false")
    with pytest.raises(config.ConfigError, match=f"{name}='{raw}': upstream reads only '{on}' as on"):
        config.env_upstream_flag(name, False, on=on, off=off, env={name: raw})


def test_defaults_apply_when_unset() -> None:
    assert config.env_int("GAZETTE_QUERY_PAGE_SIZE", 1000, env={}) == 1000
    assert config.env_float("TIKA_RETRY_BASE_DELAY", 2.0, env={}) == 2.0
    assert config.env_opt("STORAGE_ENDPOINT", env={}) is None
