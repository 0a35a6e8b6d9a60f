"""One pass over all due work: the steps `run-once` runs in order and the daemon repeats.

`run_once` syncs the connections of installed connectors one by one (a failing one is
recorded and the others still run), imports the csv inbox, then routes new events and
executes due steps. The daemon runs the same steps, spread over its threads: its workers
call `sync_one` for each connection they lease, its jobs call `import_inbox`,
`run_journeys` and `run_maintenance`. Nothing else calls the sync or journey engines for
scheduled work, so both paths skip, notify plugins and count alike.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from blippsync.app import App
from blippsync.businesses import get_business
from blippsync.config import Config
from blippsync.connections import Connection, connection_for_run, list_connections
from blippsync.database import Database
from blippsync.errors import BlippsyncError, MigrationError
from blippsync.inbox import file_done, pending_files
from blippsync.journeys.execution import ExecutionSummary, execute_due_steps
from blippsync.journeys.retention import MaintenanceSummary
from blippsync.journeys.retention import run_maintenance as journey_maintenance
from blippsync.journeys.routing import RoutingSummary, route_events
from blippsync.plugins import Plugins
from blippsync.sync import SyncOptions, SyncSummary, sync_connection

log = logging.getLogger(__name__)
# Driven by files and commands, never by a schedule (the daemon's lease claim agrees).
FILE_CONNECTORS = ("csv", "manual")


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
    lock_wait_seconds: float | None = None  # see SyncOptions


@dataclass(frozen=True)
class JourneyPass:
    routing: RoutingSummary
    execution: ExecutionSummary


ProgressFactory = Callable[[str], Callable[[SyncSummary], None] | None]


def run_once(app: App, plugins: Plugins, flt: PassFilter = PassFilter(),
             progress: ProgressFactory | None = None) -> PassReport:
    db = _database(app, flt.dry_run)
    report = PassReport()
    with db.connect() as conn:
        connections = [c for c in list_connections(conn, flt.business_id, flt.connector)
                       if c.connector not in FILE_CONNECTORS]
    for connection in connections:
        label = f"{connection.connector} {connection.account_id or ''}".strip()
        opts = SyncOptions(full=flt.full, dry_run=flt.dry_run,
                           progress=progress(label) if progress else None,
                           lock_wait_seconds=flt.lock_wait_seconds)
        report.syncs.append(sync_one(db, app.config, plugins, connection, opts))
    if flt.connector in (None, "csv"):
        for entry, summary in import_inbox(db, app.config, plugins, flt, progress):
            report.files.append(entry)
            report.syncs.append(summary)
    if not flt.dry_run:
        try:
            journeys = run_journeys(db, app.config, plugins)
        except BlippsyncError as exc:
            report.journeys = {"error": str(exc)}
        else:
            report.journeys = {"routing": asdict(journeys.routing),
                               "execution": asdict(journeys.execution)}
    return report


def sync_one(db: Database, config: Config, plugins: Plugins, connection: Connection,
             opts: SyncOptions) -> SyncSummary:
    """One sync pass of one connection, then the `sync_finished` hook (not for a dry run
    or a pass skipped because the connection is not connected or is busy elsewhere)."""
    if connection.status != "connected":
        return SyncSummary(connection.business_id, connection.connector, connection.id,
                           skipped=f"connection is {connection.status}")
    info = plugins.connectors.get(connection.connector)
    if info is None:
        return SyncSummary(connection.business_id, connection.connector, connection.id,
                           error=f"connector {connection.connector!r} is not installed")
    summary = sync_connection(db, config, connection, info.connector, opts)
    if not (opts.dry_run or summary.skipped or summary.locked_out):
        plugins.notify_sync_finished(summary)
    return summary


def import_inbox(db: Database, config: Config, plugins: Plugins, flt: PassFilter = PassFilter(),
                 progress: ProgressFactory | None = None
                 ) -> list[tuple[dict[str, Any], SyncSummary]]:
    """Import every complete file waiting in the csv inbox, filing each with its report (a
    file another process is importing, or one still being written, is left in place)."""
    done: list[tuple[dict[str, Any], SyncSummary]] = []
    for item in pending_files(config, flt.business_id):
        try:
            with db.begin() as conn:
                get_business(conn, item.business_id)
                connection = connection_for_run(conn, item.business_id, "csv",
                                                dry_run=flt.dry_run)
        except BlippsyncError as exc:
            summary = SyncSummary(item.business_id, "csv", None, error=str(exc))
        else:
            opts = SyncOptions(full=flt.full, dry_run=flt.dry_run, options={"path": item.path},
                               progress=progress("csv") if progress else None,
                               lock_wait_seconds=flt.lock_wait_seconds)
            summary = sync_one(db, config, plugins, connection, opts)
        summary_dict = summary.as_dict()
        entry: dict[str, Any] = {"file": str(item.path), **summary_dict}
        if item.changed():  # still being written: imported again once it settles
            log.warning("inbox file %s changed while it was imported; left in the inbox to be "
                        "imported again once it settles", item.path)
            entry["left_in_inbox"] = "the file changed while it was imported"
        elif not (flt.dry_run or summary.skipped or summary.interrupted or summary.locked_out):
            entry["moved_to"] = str(file_done(item, summary_dict, ok=summary.ok))
        done.append((entry, summary))
    return done


def run_journeys(db: Database, config: Config, plugins: Plugins, *,
                 batch_size: int | None = None, max_batches: int | None = None) -> JourneyPass:
    """Route new events into enrollments, then send the steps that are due (all of them,
    or `max_batches` batches of each when the daemon keeps one tick short)."""
    routing = route_events(db, config, batch_size=batch_size, max_batches=max_batches)
    execution = execute_due_steps(db, config, plugins, batch_size=batch_size,
                                  max_batches=max_batches)
    return JourneyPass(routing, execution)


def run_maintenance(db: Database, config: Config) -> MaintenanceSummary:
    """Journey housekeeping (archiving, merged customers' history, routed events past
    journeys.event_retention_days)."""
    return journey_maintenance(db, config)


def _database(app: App, dry_run: bool) -> Database:
    if not dry_run:
        return app.ready_db()
    from blippsync.migrations import status

    if status(app.db).pending:
        raise MigrationError("the database has pending migrations; run `blippsync migrate` "
                             "before a dry run (a dry run writes nothing)")
    return app.db
