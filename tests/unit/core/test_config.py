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
def test_booleans_accept_upstream_spellings(raw: str, value: bool) -> None:
    assert config.env_bool("USE_RELATIVE_FILE_PATHS", not value, env={"USE_RELATIVE_FILE_PATHS": raw}) is value


def test_bad_boolean_is_named() -> None:
    with pytest.raises(config.ConfigError, match="USE_RELATIVE_FILE_PATHS='maybe'"):
        config.env_bool("USE_RELATIVE_FILE_PATHS", False, env={"USE_RELATIVE_FILE_PATHS": "maybe"})


def test_defaults_apply_when_unset() -> None:
    assert config.env_int("GAZETTE_QUERY_PAGE_SIZE", 1000, env={}) == 1000
    assert config.env_float("TIKA_RETRY_BASE_DELAY", 2.0, env={}) == 2.0
    assert config.env_opt("STORAGE_ENDPOINT", env={}) is None
