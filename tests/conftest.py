"""Shared fixtures: a real PostgreSQL for every test that needs one.

`TEST_DATABASE_URL` picks the server (CI points it at the machine's PostgreSQL); without
it the session starts an embedded server of its own and stops it at the end. Each test
gets its own database cloned from a migrated template, so tests are isolated and fast.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from blippsync.config import Config, load_config
from blippsync.database import Database
from blippsync.testing.database import fresh_database, session_server_url

REPO = Path(__file__).resolve().parent.parent

# The headless-browser fixtures (`browser`, `screenshot`) for page tests.
pytest_plugins = ["browser"]


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    with session_server_url() as url:
        yield url


@pytest.fixture
def database_url(pg_server_url: str) -> Iterator[str]:
    """URL of a fresh migrated database, dropped after the test."""
    with fresh_database(pg_server_url) as url:
        yield url


@pytest.fixture
def empty_database_url(pg_server_url: str) -> Iterator[str]:
    """URL of a fresh database with no migrations applied."""
    with fresh_database(pg_server_url, migrated=False) as url:
        yield url


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url, pool_size=2)
    yield database
    database.dispose()


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Config:
    """A configuration pointing at the test database, with paths under tmp_path."""
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "{database_url}"\n')
    return load_config(cfg, environ={})


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The current folder: empty (no config.toml), with no BLIPPSYNC_* variables set."""
    for name in list(os.environ):
        if name.startswith("BLIPPSYNC_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


@pytest.fixture
def cli_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    """Environment for running the `blippsync` command against the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLIPPSYNC_")}
    env["BLIPPSYNC_DATABASE_URL"] = database_url
    env["BLIPPSYNC_LOGGING_FORMAT"] = "text"
    return env


TINY_PLUGIN_DIR = REPO / "tests" / "plugins" / "tiny"


@pytest.fixture
def tiny_plugin(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Install the tiny test connector through a real entry point (a dist-info on sys.path)."""
    monkeypatch.syspath_prepend(str(TINY_PLUGIN_DIR))
    import importlib

    importlib.invalidate_caches()
    yield TINY_PLUGIN_DIR
    import sys

    sys.modules.pop("tiny_connector", None)
