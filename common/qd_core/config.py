"""Reading settings from the environment, with errors that name the variable.

Upstream reads its settings from environment variables (POSTGRES_HOST, STORAGE_BUCKET, …); we keep
those names. A bad or missing value must stop a program at start-up, never halfway through a range.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


class ConfigError(ValueError):
    """A setting is missing or invalid; the message names the variable."""


def _raw(env: Mapping[str, str] | None, name: str) -> str | None:
    value = (os.environ if env is None else env).get(name)
    return None if value is None or value.strip() == "" else value.strip()


def env_str(name: str, default: str | None = None, *, env: Mapping[str, str] | None = None) -> str:
    """A required string (required when `default` is None)."""
    value = _raw(env, name)
    if value is None:
        if default is None:
            raise ConfigError(f"{name} is required but not set")
        return default
    return value


def env_opt(name: str, *, env: Mapping[str, str] | None = None) -> str | None:
    """An optional string: None when unset or empty."""
    return _raw(env, name)


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None,
            env: Mapping[str, str] | None = None) -> int:
    """An integer within [minimum, maximum]."""
    value = _raw(env, name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not an integer") from None
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name}={number} is below the minimum {minimum}")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{name}={number} is above the maximum {maximum}")
    return number


def env_float(name: str, default: float, *, minimum: float | None = None,
              env: Mapping[str, str] | None = None) -> float:
    """A float not below `minimum`."""
    value = _raw(env, name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a number") from None
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name}={number} is below the minimum {minimum}")
    return number


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def env_bool(name: str, default: bool, *, env: Mapping[str, str] | None = None) -> bool:
    """A boolean: true/false, yes/no, on/off, 1/0 (case-insensitive, like upstream's `.lower()`)."""
    value = _raw(env, name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name}={value!r} is not a boolean (use true or false)")


def env_upstream_flag(name: str, default: bool, *, on: str, off: str,
                      env: Mapping[str, str] | None = None) -> bool:
    """An upstream on/off variable, read with upstream's own spelling of "on".

    Upstream treats only `on` (case-insensitive) as true and every other value as false, so a
    deployment with, say, `USE_RELATIVE_FILE_PATHS=1` gets absolute URLs there. Rather than guess,
    any value other than `on` or `off` stops at start-up, naming the variable.
    """
    value = _raw(env, name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered == on.lower():
        return True
    if lowered == off.lower():
        return False
    raise ConfigError(f"{name}={value!r}: upstream reads only {on!r} as on and anything else as off; "
                      f"set {on!r} or {off!r}")
