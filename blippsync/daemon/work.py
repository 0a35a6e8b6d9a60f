"""The one place the daemon calls the other engines: sync, token vault, journeys.

Keeping these calls together keeps the daemon's view of its collaborators small and
lets the results be read defensively (counts from a summary, a dataclass or an int).
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from blippsync.config import Config
from blippsync.connections import Connection, get_connection
from blippsync.connector import ConnectorContext, WebhookConnector, WebhookNotice
from blippsync.database import Database
from blippsync.records import Checkpoint, Record

log = logging.getLogger(__name__)
JOURNEY_MAX_BATCHES_PER_TICK = 10
# Driven by files and commands, never by a schedule (the sync engine's runner agrees).
UNSCHEDULED_CONNECTORS = ("csv", "manual")


def load_connection(db: Database, connection_id: Any) -> Connection:
    with db.connect() as conn:
        return get_connection(conn, connection_id)


class FetchingConnector:
    """The real connector, whose `sync` is a targeted fetch of webhook notices: the sync
    engine writes its records exactly as for a sync pass (same dedupe, same identities)."""

    def __init__(self, connector: WebhookConnector, notices: Sequence[WebhookNotice]) -> None:
        self._connector = connector
        self._notices = list(notices)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connector, name)

    def sync(self, ctx: ConnectorContext) -> Iterator[Record]:
        for record in self._connector.fetch(ctx, self._notices):
            if not isinstance(record, Checkpoint):  # a fetch never moves the sync cursor
                yield record


def run_sync(db: Database, config: Config, connection: Connection, connector: Any,
             options: Mapping[str, Any] | None = None,
             stop: threading.Event | None = None) -> Any:
    """One pass through the sync engine (ending at a checkpoint once `stop` is set);
    returns its SyncSummary."""
    from blippsync.sync import SyncOptions, sync_connection

    return sync_connection(db, config, connection, connector,
                           SyncOptions(options=dict(options or {}), stop=stop,
                                       lock_wait_seconds=0))


def import_csv_inbox(db: Database, config: Config, plugins: Any) -> list[dict[str, Any]]:
    """Import the files waiting in the csv inbox, as `run-once` does (moved when done)."""
    from blippsync.app import App
    from blippsync.runner import PassFilter, PassReport, import_inbox

    app = App(config)
    app.__dict__["db"] = db  # share this process's engine instead of opening another
    report = PassReport()
    import_inbox(app, plugins, PassFilter(lock_wait_seconds=0), report)  # busy: next tick
    return report.files


def summary_counts(summary: Any) -> tuple[int, int]:
    """(customers upserted, events emitted) from a SyncSummary."""
    counts = getattr(summary, "counts", None)
    if counts is None:
        return 0, 0
    return (int(getattr(counts, "created", 0)) + int(getattr(counts, "updated", 0)),
            int(getattr(counts, "emitted", 0)))


def count(result: Any, *names: str) -> int:
    """A count out of whatever an engine returned: an int, a mapping or an object."""
    if isinstance(result, bool) or result is None:
        return 0
    if isinstance(result, int):
        return result
    for name in names:
        value = result.get(name) if isinstance(result, Mapping) else getattr(result, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, list | tuple | set):
            return len(value)
    return 0


def _journey_function(name: str) -> Any:
    """The journey engine's function, from its package or the module that defines it."""
    import importlib

    for module in ("blippsync.journeys", f"blippsync.journeys.{_JOURNEY_MODULES[name]}"):
        try:
            found = getattr(importlib.import_module(module), name, None)
        except ImportError:
            found = None
        if found is not None:
            return found
    return None


_JOURNEY_MODULES = {"route_events": "routing", "execute_due_steps": "execution",
                    "run_maintenance": "retention"}


def _bounded(function: Any, **kwargs: Any) -> dict[str, Any]:
    """Pass max_batches when the engine takes it, so one tick stays bounded."""
    params = inspect.signature(function).parameters
    if "max_batches" in params:
        kwargs["max_batches"] = JOURNEY_MAX_BATCHES_PER_TICK
    return kwargs


def route_events(db: Database, config: Config, batch_size: int) -> Any:
    route = _journey_function("route_events")
    return route(db, config, **_bounded(route, batch_size=batch_size))


def execute_due_steps(db: Database, config: Config, plugins: Any, batch_size: int) -> Any:
    execute = _journey_function("execute_due_steps")
    return execute(db, config, plugins, **_bounded(execute, batch_size=batch_size))


def journey_maintenance(db: Database, config: Config) -> Any:
    maintain = _journey_function("run_maintenance")
    return maintain(db, config) if maintain is not None else None


def refresh_token(db: Database, config: Config, connection: Connection, connector: Any,
                  http: Any) -> None:
    """Make the vault hand out a fresh-enough token (it refreshes under a row lock)."""
    from blippsync.vault import token_provider

    token_provider(db, config, connection, connector, http).access_token()


def journeys_available() -> bool:
    return all(_journey_function(n) is not None for n in ("route_events", "execute_due_steps"))
