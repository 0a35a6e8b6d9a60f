"""A fresh migrated database per test, through blippsync's own testing helpers (as any
connector package would use them)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from blippsync.database import Database
from blippsync.testing.database import fresh_database, session_server_url


@pytest.fixture(scope="session")
def stripe_pg_server_url() -> Iterator[str]:
    with session_server_url() as url:
        yield url


@pytest.fixture
def database_url(stripe_pg_server_url: str) -> Iterator[str]:
    with fresh_database(stripe_pg_server_url) as url:
        yield url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url, pool_size=2)
    yield database
    database.dispose()
