"""Operator fixtures: the test schema with the packaged territories loaded."""

from __future__ import annotations

from typing import Any

import pytest

from qd_devtools import territories


@pytest.fixture()
def db(conn: Any) -> Any:
    """The test schema's autocommit connection, with real territory rows."""
    territories.load_territories(conn)
    return conn
