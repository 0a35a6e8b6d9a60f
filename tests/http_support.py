"""The daemon's HTTP app served on a free loopback port, for tests that talk to it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from blippsync.config import Config
from blippsync.database import Database
from blippsync.http import HttpServer, HttpState, build_app
from blippsync.metrics import DaemonMetrics
from blippsync.plugins import load_plugins


@contextmanager
def serving(config: Config, db: Database, plugins: Any = None) -> Iterator[str]:
    """Yield the server's base URL (http://127.0.0.1:<port>) while it runs."""
    state = HttpState(config=config, db=db, plugins=plugins or load_plugins(),
                      metrics=DaemonMetrics(db), scheduler_age=lambda: 0.0, daemon_id="test")
    server = HttpServer(build_app(state), "127.0.0.1", 0)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()
