"""One pass over all due work: what `run-once` does and the daemon repeats.

Connections of installed connectors are synced one by one (a failing one is recorded
and the others still run), then the csv inbox is imported, then the journey engine
routes new events and executes due steps.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from blippsync.app import App
from blippsync.businesses import get_business
from blippsync.connections import Connection, connection_for_run, list_connections
from blippsync.errors import BlippsyncError, MigrationError
from blippsync.inbox import file_done, pending_files
from blippsync.plugins import Plugins
from blippsync.sync import SyncOptions, SyncSummary, sync_connection

log = logging.getLogger(__name__)
FILE_CONNECTORS = ("csv", "manual")  # driven by files and commands, not by a schedule


@dataclass
class PassReport:
    syncs: list[SyncSummary] = field(default_factory=list)
    journeys: dict[str, Any] = field(default_factory=dict)
    files: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return any(s.error for s in self.syncs) or bool(self.journeys.get("error"))


@dataclass(frozen=True)
class PassFilter:
    business_id: uuid.UUID | None = None
    connector: str | None = None
    full: bool = False
    dry_run: bool = False


ProgressFactory = Callable[[str], Callable[[SyncSummary], None] | None]


def run_once(app: App, plugins: Plugins, flt: PassFilter = PassFilter(),
             progress: ProgressFactory | None = None) -> PassReport:
    db = _database(app, flt.dry_run)
    report = PassReport()
    with db.connect() as conn:
        connections = [c for c in list_connections(conn, flt.business_id, flt.connector)
                       if c.connector not in FILE_CONNECTORS]
    for connection in connections:
        report.syncs.append(_sync_one(app, plugins, connection, flt, progress))
    if flt.connector in (None, "csv"):
        import_inbox(app, plugins, flt, report, progress)
    if not flt.dry_run:
        report.journeys = _run_journeys(app, plugins)
    return report


def _run_journeys(app: App, plugins: Plugins) -> dict[str, Any]:
    """Route new events into enrollments, then send every step that is due."""
    from dataclasses import asdict

    from blippsync.journeys.execution import execute_due_steps
    from blippsync.journeys.routing import route_events

    try:
        routing = route_events(app.db, app.config)
        execution = execute_due_steps(app.db, app.config, plugins)
    except BlippsyncError as exc:
        return {"error": str(exc)}
    return {"routing": asdict(routing), "execution": asdict(execution)}


def _database(app: App, dry_run: bool) -> Any:
    if not dry_run:
        return app.ready_db()
    from blippsync.migrations import status

    if status(app.db).pending:
        raise MigrationError("the database has pending migrations; run `blippsync migrate` "
                             "before a dry run (a dry run writes nothing)")
    return app.db


def _sync_one(app: App, plugins: Plugins, connection: Connection, flt: PassFilter,
              progress: ProgressFactory | None, options: dict[str, Any] | None = None
              ) -> SyncSummary:
    label = f"{connection.connector} {connection.account_id or ''}".strip()
    if connection.status != "connected":
        return SyncSummary(connection.business_id, connection.connector, connection.id,
                           skipped=f"connection is {connection.status}")
    info = plugins.connectors.get(connection.connector)
    if info is None:
        return SyncSummary(connection.business_id, connection.connector, connection.id,
                           error=f"connector {connection.connector!r} is not installed")
    opts = SyncOptions(full=flt.full, dry_run=flt.dry_run, options=options or {},
                       progress=progress(label) if progress else None)
    summary = sync_connection(app.db, app.config, connection, info.connector, opts)
    if not flt.dry_run:
        plugins.notify_sync_finished(summary)
    return summary


def import_inbox(app: App, plugins: Plugins, flt: PassFilter, report: PassReport,
                 progress: ProgressFactory | None = None) -> None:
    """Import every file waiting in the csv inbox, filing each with its report."""
    for item in pending_files(app.config, flt.business_id):
        try:
            with app.db.begin() as conn:
                get_business(conn, item.business_id)
                connection = connection_for_run(conn, item.business_id, "csv",
                                                dry_run=flt.dry_run)
        except BlippsyncError as exc:
            summary = SyncSummary(item.business_id, "csv", None, error=str(exc))
        else:
            summary = _sync_one(app, plugins, connection, flt, progress, {"path": item.path})
        summary_dict = summary.as_dict()
        entry: dict[str, Any] = {"file": str(item.path), **summary_dict}
        if not flt.dry_run and not summary.skipped and not summary.interrupted:
            entry["moved_to"] = str(file_done(item, summary_dict, ok=summary.ok))
        report.files.append(entry)
        report.syncs.append(summary)
