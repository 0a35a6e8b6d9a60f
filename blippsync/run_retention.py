"""Retention of `sync_runs`: one row per sync pass, at 100k businesses every 15 minutes
~3.5 billion rows a year, nearly all passes that changed nothing.

Two rules, each a walk over the runs started before its cutoff, deleting in chunks of
`CHUNK_ROWS` (each chunk its own short transaction, so the daily job never holds a big
transaction or many locks):

- a succeeded pass that changed nothing goes after `sync.noop_run_retention_days` (7);
- every other finished run goes after `sync.run_retention_days` (365).

Never deleted: a run in progress, a connection's latest run, a run an identity conflict
points at. The no-op walk starts where the previous day's ended
(`blippsync.retention_sweeps`), so a day's sweep reads about one day of runs, not a year
of kept ones; a no-op run it could not delete then (still its connection's latest, still
running) falls to the longer rule.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from blippsync.config import Config
from blippsync.database import Database
from blippsync.retention_sweeps import check_retention_settings, mark_swept, swept_until
from blippsync.sqlfiles import load

CHUNK_ROWS = 5000
NOOP_SWEEP = "sync_runs_noop"
_START = (datetime(1970, 1, 1, tzinfo=UTC), uuid.UUID(int=0))
_SQL = load("run_retention")


@dataclass(frozen=True)
class RunRetention:
    noop_deleted: int = 0   # no-op passes past sync.noop_run_retention_days
    old_deleted: int = 0    # any finished run past sync.run_retention_days


def delete_old_runs(db: Database, config: Config, *, now: datetime | None = None,
                    chunk_rows: int = CHUNK_ROWS) -> RunRetention:
    check_retention_settings(config)
    at = now or datetime.now(UTC)
    noop = old = 0
    noop_days = int(config["sync.noop_run_retention_days"])
    if noop_days > 0:
        cutoff = at - timedelta(days=noop_days)
        with db.connect() as conn:
            since = swept_until(conn, NOOP_SWEEP)
        noop = _sweep(db, cutoff, noop_only=True, chunk_rows=chunk_rows,
                      start=(since, _START[1]) if since else _START)
        with db.begin() as conn:
            mark_swept(conn, NOOP_SWEEP, cutoff)
    keep_days = int(config["sync.run_retention_days"])
    if keep_days > 0:
        old = _sweep(db, at - timedelta(days=keep_days), noop_only=False,
                     chunk_rows=chunk_rows, start=_START)
    return RunRetention(noop_deleted=noop, old_deleted=old)


def _sweep(db: Database, before: datetime, *, noop_only: bool, chunk_rows: int,
           start: tuple[datetime, uuid.UUID]) -> int:
    after_at, after_id = start
    deleted = 0
    while True:
        with db.begin() as conn:
            row = conn.execute(_SQL["sweep_runs"], {
                "after_at": after_at, "after_id": after_id, "before": before,
                "limit": chunk_rows, "noop_only": noop_only}).one()
        deleted += int(row.deleted)
        if row.scanned < chunk_rows:
            return deleted
        after_at, after_id = row.last_at, row.last_id
