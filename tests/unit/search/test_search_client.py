"""Client options mirror upstream's (timeout 60, 3 transport retries, retry on timeout); auth only with a user."""

from __future__ import annotations

import base64
from typing import Any

from qd_extractor.search import SearchSettings, make_client


def _connection(settings: SearchSettings) -> Any:
    client = make_client(settings)
    return client, client.transport.get_connection()


def test_defaults_are_upstreams() -> None:
    settings = SearchSettings(host="http://opensearch:9200", index="querido-diario")
    assert (settings.timeout_s, settings.max_retries, settings.retry_on_timeout) == (60.0, 3, True)
    client, conn = _connection(settings)
    assert conn.host == "http://opensearch:9200" and conn.timeout == 60.0
    assert client.transport.max_retries == 3 and client.transport.retry_on_timeout is True


def test_basic_auth_only_when_user_is_set() -> None:
    _, conn = _connection(SearchSettings(host="http://h:9200", index="i", user="admin", password="s3cret"))
    assert conn.headers["authorization"] == "Basic " + base64.b64encode(b"admin:s3cret").decode()
    for user in (None, ""):
        _, conn = _connection(SearchSettings(host="http://h:9200", index="i", user=user, password="ignored"))
        assert "authorization" not in conn.headers


def test_custom_timeouts_reach_the_transport() -> None:
    client, conn = _connection(SearchSettings(host="http://h:9200", index="i", timeout_s=5.5, max_retries=0,
                                              retry_on_timeout=False))
    assert conn.timeout == 5.5
    assert client.transport.max_retries == 0 and client.transport.retry_on_timeout is False
