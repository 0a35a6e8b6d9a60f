"""What a daemon does with one leased connection: webhook notices first, then the sync.

Notices are fetched in batches through the connector's `fetch` and written by the sync
engine like any pass; when a batch fails, its notices are fetched one by one, so only the
notice that fails is retried later with backoff, giving up after
`daemon.webhook_max_attempts` (the next reconciliation still catches the change).
A connection busy in another process is left for later (leases coordinate the daemons):
the daemon never waits for its lock.
The sync runs when the connection is due, and the lease is handed back with the next
sync time: the interval after success, a growing retry delay after failure.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from blippsync import webhook_inbox
from blippsync.config import Config
from blippsync.connections import Connection, get_connection, set_status
from blippsync.connector import ConnectorContext, WebhookConnector, WebhookNotice
from blippsync.daemon import leases
from blippsync.daemon.leases import Lease
from blippsync.database import Database
from blippsync.errors import BlippsyncError
from blippsync.logs import log_context
from blippsync.metrics import DaemonMetrics
from blippsync.plugins import Plugins
from blippsync.records import Checkpoint, Record
from blippsync.runner import sync_one
from blippsync.sync import SyncOptions, SyncSummary, sync_connection

log = logging.getLogger(__name__)
MAX_NOTICE_BATCHES_PER_LEASE = 20
# The notice a connector yields when the remote says the app was uninstalled.
DISCONNECT_ENTITY, DISCONNECT_OPERATION = "connection", "disconnected"


@dataclass
class Worker:
    db: Database
    config: Config
    plugins: Plugins
    metrics: DaemonMetrics
    owner: str

    def interval_seconds(self, lease: Lease) -> int:
        per_connector = self.config["daemon.sync_intervals"].get(lease.connector)
        return int(lease.sync_interval_seconds or per_connector
                   or self.config["daemon.sync_interval_seconds"])

    def retry_seconds(self, lease: Lease) -> int:
        base = int(self.config["daemon.retry_seconds"])
        backoff = base * int(2 ** min(lease.consecutive_failures, 16))
        return min(self.interval_seconds(lease), backoff)

    def work_on(self, lease: Lease, halt: threading.Event) -> None:
        """Do what the lease is for, then release it (always)."""
        next_sync_at: datetime | None = None
        with log_context(business_id=lease.business_id, connection_id=lease.connection_id):
            try:
                with self.db.connect() as conn:
                    connection = get_connection(conn, lease.connection_id)
                connector = self.plugins.connector(connection.connector)
                if isinstance(connector, WebhookConnector):
                    self.process_notices(connection, connector, halt)
                if lease.sync_due and not halt.is_set():
                    next_sync_at = self.sync(lease, connection, halt)
            except BlippsyncError as exc:  # unknown connector, connection gone...
                log.warning("connection %s: %s", lease.connection_id, exc)
                next_sync_at = _now() + timedelta(seconds=self.retry_seconds(lease))
            except Exception:
                log.exception("connection %s: unexpected failure", lease.connection_id)
                next_sync_at = _now() + timedelta(seconds=self.retry_seconds(lease))
            finally:
                leases.release(self.db, self.owner, lease.connection_id, next_sync_at)

    def sync(self, lease: Lease, connection: Connection, halt: threading.Event) -> datetime:
        with self.metrics.sync_duration.labels(lease.connector).time():
            summary = sync_one(self.db, self.config, self.plugins, connection,
                               SyncOptions(stop=halt, lock_wait_seconds=0))
        self._count(connection.connector, summary)
        if summary.skipped:
            self.metrics.syncs.labels(lease.connector, "skipped").inc()
            return _now() + timedelta(seconds=float(self.config["daemon.tick_seconds"]) * 5)
        if summary.interrupted:
            self.metrics.syncs.labels(lease.connector, "interrupted").inc()
            log.info("sync of %s stopped at a checkpoint (shutdown)", lease.connector)
            return _now()  # resume from the committed cursor at once, anywhere
        if summary.ok:
            self.metrics.syncs.labels(lease.connector, "succeeded").inc()
            return _now() + timedelta(seconds=self.interval_seconds(lease))
        self.metrics.syncs.labels(lease.connector, "failed").inc()
        return _now() + timedelta(seconds=self.retry_seconds(lease))

    def process_notices(self, connection: Connection, connector: WebhookConnector,
                        halt: threading.Event) -> None:
        batch_size = int(self.config["daemon.webhook_batch_size"])
        max_attempts = int(self.config["daemon.webhook_max_attempts"])
        for _ in range(MAX_NOTICE_BATCHES_PER_LEASE):
            if halt.is_set():
                return
            stored = webhook_inbox.pending(self.db, connection.id, batch_size)
            if not stored:
                return
            if self._disconnects(connection, stored):
                return
            if self._fetch(connection, connector, stored, max_attempts):
                return  # another process has the connection: the notices wait

    def _fetch(self, connection: Connection, connector: WebhookConnector,
               stored: list[webhook_inbox.StoredNotice], max_attempts: int) -> bool:
        """Fetch and write these notices together; if that fails, each one on its own, so
        one poisoned notice (an id the provider refuses) holds back only itself. True when
        another process has the connection."""
        ids = [s.id for s in stored]
        fetching = FetchingConnector(connector, [s.notice for s in stored])
        summary: SyncSummary | None = None
        try:
            summary = sync_connection(self.db, self.config, connection, fetching,
                                      SyncOptions(options={"webhook_notices": len(ids)},
                                                  lock_wait_seconds=0))
            if summary.skipped:
                return True
            error = summary.error
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error and len(stored) > 1:
            log.info("webhook fetch of %d notices failed (%s); fetching each on its own",
                     len(ids), error)
            return any(self._fetch(connection, connector, [one], max_attempts)
                       for one in stored)
        if error or summary is None:
            webhook_inbox.mark_failed(self.db, ids, error or "no summary", max_attempts)
            self.metrics.webhook_notices.labels(connection.connector, "failed").inc(len(ids))
            log.warning("webhook notice %s %s failed: %s", stored[0].notice.entity,
                        stored[0].notice.entity_id, error)
            return False
        webhook_inbox.mark_processed(self.db, ids)
        self._count(connection.connector, summary)
        self.metrics.webhook_notices.labels(connection.connector, "processed").inc(len(ids))
        return False

    def _count(self, connector: str, summary: SyncSummary) -> None:
        counts = summary.counts
        self.metrics.customers_upserted.labels(connector).inc(counts.created + counts.updated)
        self.metrics.events_emitted.labels(connector).inc(counts.emitted)
        self.metrics.api_throttle_wait.labels(connector).inc(summary.throttle_wait_seconds)

    def _disconnects(self, connection: Connection,
                     stored: list[webhook_inbox.StoredNotice]) -> bool:
        """An app-disconnect notice (Jobber APP_DISCONNECT): the tokens are dead, so mark the
        connection disconnected for its owner to reconnect, and fetch nothing."""
        gone = [s for s in stored if s.notice.entity == DISCONNECT_ENTITY
                and s.notice.operation == DISCONNECT_OPERATION]
        if not gone:
            return False
        with self.db.begin() as conn:
            set_status(conn, connection.id, "disconnected",
                       f"the app was disconnected in {connection.connector}")
        webhook_inbox.mark_processed(self.db, [s.id for s in gone])
        self.metrics.webhook_notices.labels(connection.connector, "disconnected").inc(len(gone))
        log.warning("%s says the app was disconnected: connection marked disconnected",
                    connection.connector)
        return True


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


def _now() -> datetime:
    return datetime.now(UTC)
