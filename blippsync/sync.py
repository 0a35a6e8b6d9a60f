"""The sync engine: runs a connector and writes what it yields, exactly once.

Records are gathered into batches; each batch commits its customers, its events and the
last checkpoint seen in one transaction (see record_stream and batch_writer). Killing the
process at any instant and running again converges on the same state: records after the
committed cursor are produced again and written idempotently.

Backfill guard: events older than `sync.backfill_horizon_days` are stored as
historical and never start a journey, whatever kind of run produced them: a first sync,
a --full reload, or an old export dropped into the csv inbox.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from blippsync import __version__
from blippsync.batch_writer import MAX_REPORTED_PROBLEMS, BatchTarget
from blippsync.businesses import get_business
from blippsync.config import Config, connector_settings
from blippsync.connections import Connection, set_status
from blippsync.connector import ConnectorContext, TokenProvider
from blippsync.database import Database
from blippsync.errors import AuthError, BlippsyncError, ConnectorError
from blippsync.logs import log_context
from blippsync.rate_limits import LimiterFactory
from blippsync.record_stream import consume_records
from blippsync.redaction import redact
from blippsync.sqlfiles import load
from blippsync.sync_summary import ProgressCallback, SyncSummary

log = logging.getLogger(__name__)
_SQL = load("sync")
HTTP_TIMEOUT_SECONDS = 30.0
LOCK_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class SyncOptions:
    full: bool = False
    dry_run: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)  # per-invocation, for the connector
    now: datetime | None = None
    progress: ProgressCallback | None = None
    stop: threading.Event | None = None  # set: end at the next checkpoint (graceful shutdown)
    # how long to wait for the connection's lock; None: sync.lock_wait_seconds; 0: do not
    # wait and report the pass as skipped (the daemon, whose leases already coordinate)
    lock_wait_seconds: float | None = None


def sync_connection(db: Database, config: Config, connection: Connection, connector: Any,
                    opts: SyncOptions = SyncOptions(), *, http: httpx.Client | None = None,
                    tokens: TokenProvider | None = None) -> SyncSummary:
    """One pass of `connector` for `connection`: never raises for the connector's failures,
    which are recorded on the run and the connection and returned in the summary."""
    summary = SyncSummary(connection.business_id, connection.connector, connection.id,
                          dry_run=opts.dry_run)
    with log_context(business_id=connection.business_id, connection_id=connection.id), \
            db.connect() as conn:
        wait = (config["sync.lock_wait_seconds"] if opts.lock_wait_seconds is None
                else opts.lock_wait_seconds)
        if not _take_lock(conn, connection, wait):
            holder = _lock_holder(conn, connection)
            conn.rollback()
            if opts.lock_wait_seconds == 0:  # the daemon: leases coordinate, come back later
                summary.skipped = "another process is syncing this connection"
                return summary
            summary.locked_out = True
            summary.error = (f"another process is syncing this {connection.connector} "
                             f"connection ({holder}); waited {wait:.0f}s (sync.lock_wait_seconds)"
                             " and did nothing: run again once it has finished")
            return summary
        conn.commit()
        try:
            return _locked_sync(db, conn, config, connection, connector, opts, summary,
                                http, tokens)
        finally:
            conn.rollback()
            conn.execute(_SQL["unlock_connection"], {"id": connection.id})
            conn.commit()


def _take_lock(conn: sa.Connection, connection: Connection, wait_seconds: float) -> bool:
    """The connection's lock, waiting up to `wait_seconds` for another holder to finish:
    right after a crash the killed process's session may hold it until PostgreSQL notices."""
    deadline = time.monotonic() + max(0.0, wait_seconds)
    told = False
    while True:
        if conn.execute(_SQL["try_lock_connection"], {"id": connection.id}).scalar():
            if told:
                log.warning("got the lock of %s connection %s; going on", connection.connector,
                            connection.id)
            return True
        conn.rollback()
        if time.monotonic() >= deadline:
            return False
        if not told:
            told = True
            log.warning("%s connection %s is being synced by another process (%s); waiting up "
                        "to %.0fs for it", connection.connector, connection.id,
                        _lock_holder(conn, connection), wait_seconds)
            conn.rollback()
        time.sleep(min(LOCK_POLL_SECONDS, max(0.0, deadline - time.monotonic())))


def _lock_holder(conn: sa.Connection, connection: Connection) -> str:
    """Who holds the lock, in words: its backend pid, program, address and state."""
    row = conn.execute(_SQL["lock_holder"], {"id": connection.id}).one_or_none()
    if row is None:
        return "it has just let go"
    words = [f"PostgreSQL backend pid {row.pid}"]
    if row.application_name:
        words.append(f"of {row.application_name}")
    if row.client_addr:
        words.append(f"from {row.client_addr}")
    if row.state_change:
        words.append(f"{row.state or 'busy'} since {row.state_change:%H:%M:%S %Z}")
    return " ".join(words)


def _locked_sync(db: Database, conn: sa.Connection, config: Config, connection: Connection,
                 connector: Any, opts: SyncOptions, summary: SyncSummary,
                 http: httpx.Client | None, tokens: TokenProvider | None) -> SyncSummary:
    with contextlib.ExitStack() as log_fields:  # the run id joins the log lines once known
        return _run_pass(db, conn, config, connection, connector, opts, summary, http, tokens,
                         log_fields)


def _run_pass(db: Database, conn: sa.Connection, config: Config, connection: Connection,
              connector: Any, opts: SyncOptions, summary: SyncSummary,
              http: httpx.Client | None, tokens: TokenProvider | None,
              log_fields: contextlib.ExitStack) -> SyncSummary:
    started = time.monotonic()
    business = get_business(conn, connection.business_id)
    conn.rollback()
    now = opts.now or datetime.now(UTC)
    target = BatchTarget(business_id=connection.business_id, source=connector.name,
                         connection_id=connection.id, run_id=None,
                         country=business.country or config["sync.default_country"],
                         horizon=timedelta(days=config["sync.backfill_horizon_days"]), now=now)
    if opts.dry_run:
        conn.begin()  # one transaction for the whole pass, rolled back: nothing is written
        if not conn.execute(_SQL["connection_exists"], {"id": connection.id}).scalar():
            target = BatchTarget(**{**target.__dict__, "connection_id": None})  # planned
    else:
        with conn.begin():
            # we hold the connection's lock: a run still "running" died with its process
            conn.execute(_SQL["close_abandoned_runs"], {"connection_id": connection.id})
            summary.run_id = conn.execute(_SQL["start_run"], {
                "business_id": connection.business_id, "connection_id": connection.id,
                "connector": connector.name, "full": opts.full}).scalar_one()
        target = BatchTarget(**{**target.__dict__, "run_id": summary.run_id})
        log_fields.enter_context(log_context(run_id=summary.run_id))
    own_http = http is None
    client = http or httpx.Client(timeout=HTTP_TIMEOUT_SECONDS, verify=_tls_context(),
                                  headers={"User-Agent": f"blippsync/{__version__}"})
    limiters = LimiterFactory(db, connector.name)
    try:
        if connector.needs_oauth and tokens is None:
            from blippsync.vault import token_provider

            tokens = token_provider(db, config, connection, connector, client)
        settings = {**connector_settings(config, connector.name, connection.settings),
                    "timezone": business.timezone, "country": target.country}
        from blippsync.vault.credentials import connector_credentials

        credentials = connector_credentials(db, config, connection, connector, settings)
        ctx = ConnectorContext(
            business_id=connection.business_id, connection_id=connection.id,
            account_id=connection.account_id, settings=settings,
            cursor=None if opts.full else connection.cursor, http=client,
            log=logging.getLogger(f"blippsync.connector.{connector.name}"), full=opts.full,
            credentials=credentials, tokens=tokens, options=opts.options, now=opts.now,
            shared_limiter=limiters, on_throttle_wait=summary.add_throttle_wait)
        consume_records(conn, target, connector.sync(ctx), summary,
                        batch_size=config["sync.batch_size"], dry_run=opts.dry_run,
                        progress=opts.progress, stop=opts.stop)
    except AuthError as exc:
        summary.error = redact(str(exc))
        if not opts.dry_run:
            with db.begin() as status_conn:
                set_status(status_conn, connection.id, exc.connection_status, summary.error)
    except (ConnectorError, BlippsyncError) as exc:
        summary.error = redact(str(exc))
    except Exception as exc:  # a connector bug must not take the other connections down
        summary.error = redact(f"{type(exc).__name__}: {exc}")
        log.exception("connector %s failed", connector.name)
    except BaseException:  # interrupted (signal): what was committed stays, the run says so
        summary.error, summary.interrupted = "interrupted", True
        raise
    finally:
        limiters.close()
        if own_http:
            client.close()
        summary.seconds = time.monotonic() - started
        if opts.dry_run:
            conn.rollback()
        else:
            _finish_run(conn, summary)
    if summary.error:
        log.warning("sync of %s failed: %s", connector.name, summary.error)
    return summary


@functools.cache
def _tls_context() -> Any:
    """One verifying TLS context per process, shared by every pass's client: building one
    loads the CA bundle, ~80 ms of CPU, which was most of a small sync pass's cost."""
    return httpx.create_ssl_context()


def _finish_run(conn: sa.Connection, summary: SyncSummary) -> None:
    conn.rollback()
    details = {"problems": summary.problems[:MAX_REPORTED_PROBLEMS],
               "conflicts": summary.counts.conflicts, "merged": summary.counts.merged,
               "joined": summary.counts.joined}
    connection_step = ("finish_connection_failed" if summary.error
                       else "finish_connection_interrupted" if summary.interrupted
                       else "finish_connection_ok")
    with conn.begin():
        conn.execute(_SQL["finish_run"], {
            "run_id": summary.run_id,
            "status": ("interrupted" if summary.interrupted
                       else "failed" if summary.error else "succeeded"),
            "error": summary.error, "duration_ms": int(summary.seconds * 1000),
            "details": json.dumps(details, default=str)})
        conn.execute(_SQL[connection_step], {"id": summary.connection_id, "error": summary.error})
