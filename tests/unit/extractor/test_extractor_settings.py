"""ExtractorSettings.from_env: upstream's variables keep upstream's meaning, or stop at start-up."""

from __future__ import annotations

import pytest

from qd_core.config import ConfigError
from qd_extractor.settings import ExtractorSettings

BASE = {"POSTGRES_HOST": "db", "POSTGRES_DB": "qd", "POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p",
        "STORAGE_BUCKET": "b", "APACHE_TIKA_SERVER": "http://tika:9998/", "OPENSEARCH_HOST": "http://os:9200",
        "OPENSEARCH_INDEX": "querido-diario", "MEMORY_LIMIT_BYTES": str(256 * 1024**2)}


def test_absolute_urls_by_default_need_the_files_endpoint() -> None:
    with pytest.raises(ConfigError, match="QUERIDO_DIARIO_FILES_ENDPOINT is required"):
        ExtractorSettings.from_env(BASE)
    s = ExtractorSettings.from_env({**BASE, "QUERIDO_DIARIO_FILES_ENDPOINT": "data.example"})
    assert (s.relative_paths, s.files_endpoint, s.debug, s.tika.url) == (False, "data.example", False,
                                                                         "http://tika:9998")


@pytest.mark.parametrize("raw", ["true", "TRUE", "True"])
def test_relative_paths_on_upstreams_spelling(raw: str) -> None:
    s = ExtractorSettings.from_env({**BASE, "USE_RELATIVE_FILE_PATHS": raw})
    assert s.relative_paths is True and s.files_endpoint is None


@pytest.mark.parametrize("raw", ["1", "yes", "on", "verdadeiro"])
def test_relative_paths_spelled_otherwise_stop_at_start_up(raw: str) -> None:
    # Upstream reads these as false (absolute URLs); we refuse rather than silently pick either.
    with pytest.raises(ConfigError, match=f"USE_RELATIVE_FILE_PATHS='{raw}'"):
        ExtractorSettings.from_env({**BASE, "USE_RELATIVE_FILE_PATHS": raw, "QUERIDO_DIARIO_FILES_ENDPOINT": "x"})


def test_debug_is_upstreams_1() -> None:
    assert ExtractorSettings.from_env({**BASE, "USE_RELATIVE_FILE_PATHS": "true", "DEBUG": "1"}).debug is True
    with pytest.raises(ConfigError, match="DEBUG='true'"):
        ExtractorSettings.from_env({**BASE, "USE_RELATIVE_FILE_PATHS": "true", "DEBUG": "true"})
