"""Fixtures shared by the server's tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from server.db import Database
from server.migrate import upgrade


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A migrated database on each supported backend, with its own caches (nothing
    carried over from earlier tests)."""
    upgrade(database_url)
    database = Database(database_url)
    yield database
    database.dispose()
