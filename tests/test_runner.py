"""The orchestrator's per-connection step (`runner.sync_one`, used by run-once, the daemon
and the csv/manual commands): the `sync_finished` hook and the passes it skips."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from journey_support import make_business

from blippsync.config import Config
from blippsync.connections import ensure_connection, get_connection
from blippsync.database import Database
from blippsync.hookspecs import hookimpl
from blippsync.plugins import load_plugins
from blippsync.runner import sync_one
from blippsync.sync import SyncOptions, SyncSummary


class Watcher:
    def __init__(self) -> None:
        self.seen: list[SyncSummary] = []

    @hookimpl
    def sync_finished(self, summary: SyncSummary) -> None:
        self.seen.append(summary)


def test_sync_finished_gets_each_real_pass_and_no_dry_or_skipped_one(
        db: Database, config: Config, tiny_plugin: Path) -> None:
    watcher = Watcher()
    plugins = load_plugins(extra=[("watcher", watcher)])
    business = make_business(db)
    with db.begin() as conn:
        connection = ensure_connection(conn, business, "tiny")

    done = sync_one(db, config, plugins, connection, SyncOptions())
    assert done.ok and done.counts.created == 2
    assert watcher.seen == [done]

    sync_one(db, config, plugins, connection, SyncOptions(dry_run=True))
    failed = sync_one(db, config, plugins, connection, SyncOptions(options={"fail": True}))
    assert watcher.seen == [done, failed] and failed.error == "tiny: the remote said no"

    with db.begin() as conn:
        conn.execute(sa.text("UPDATE connections SET status = 'disconnected' WHERE id = :id"),
                     {"id": connection.id})
        gone = get_connection(conn, connection.id)
    skipped = sync_one(db, config, plugins, gone, SyncOptions())
    assert skipped.skipped == "connection is disconnected"
    with db.connect() as conn:  # another process holds the connection's lock
        conn.execute(sa.text("SELECT pg_advisory_lock(hashtextextended("
                             "'blippsync:connection:' || :id, 0))"), {"id": str(connection.id)})
        with db.begin() as other:
            other.execute(sa.text("UPDATE connections SET status = 'connected'"))
        busy = sync_one(db, config, plugins, connection, SyncOptions(lock_wait_seconds=0.5))
    assert busy.locked_out and not busy.ok  # a pass that could not run: never an empty success
    assert watcher.seen == [done, failed]
