"""What a daemon does with one leased connection: webhook notices first, then the sync.

Notices are fetched in batches through the connector's `fetch` and written by the sync
engine like any pass; when a batch fails, its notices are fetched one by one, so only the
notice that fails is retried later with backoff, giving up after
`daemon.webhook_max_attempts` (the next reconciliation still catches the change).
The sync runs when the connection is due, and the lease is handed back with the next
sync time: the interval after success, a growing retry delay after failure.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from blippsync.config import Config
from blippsync.connections import Connection, set_status
from blippsync.connector import WebhookConnector
from blippsync.daemon import inbox, leases, work
from blippsync.daemon.leases import Lease
from blippsync.daemon.metrics import DaemonMetrics
from blippsync.database import Database
from blippsync.errors import BlippsyncError
from blippsync.logs import log_context

log = logging.getLogger(__name__)
MAX_NOTICE_BATCHES_PER_LEASE = 20
# The notice a connector yields when the remote says the app was uninstalled.
DISCONNECT_ENTITY, DISCONNECT_OPERATION = "connection", "disconnected"


@dataclass
class Worker:
    db: Database
    config: Config
    plugins: Any
    metrics: DaemonMetrics
    owner: str

    def interval_seconds(self, lease: Lease) -> int:
        per_connector = self.config["daemon.sync_intervals"].get(lease.connector)
        return int(lease.sync_interval_seconds or per_connector
                   or self.config["daemon.sync_interval_seconds"])

    def retry_seconds(self, lease: Lease) -> int:
        base = int(self.config["daemon.retry_seconds"])
        return min(self.interval_seconds(lease), base * 2 ** min(lease.consecutive_failures, 16))

    def work_on(self, lease: Lease, halt: threading.Event) -> None:
        """Do what the lease is for, then release it (always)."""
        next_sync_at: datetime | None = None
        with log_context(business_id=lease.business_id, connection_id=lease.connection_id):
            try:
                connection = work.load_connection(self.db, lease.connection_id)
                connector = self.plugins.connector(connection.connector)
                if isinstance(connector, WebhookConnector):
                    self.process_notices(connection, connector, halt)
                if lease.sync_due and not halt.is_set():
                    next_sync_at = self.sync(lease, connection, connector, halt)
            except BlippsyncError as exc:  # unknown connector, connection gone...
                log.warning("connection %s: %s", lease.connection_id, exc)
                next_sync_at = _now() + timedelta(seconds=self.retry_seconds(lease))
            except Exception:
                log.exception("connection %s: unexpected failure", lease.connection_id)
                next_sync_at = _now() + timedelta(seconds=self.retry_seconds(lease))
            finally:
                leases.release(self.db, self.owner, lease.connection_id, next_sync_at)

    def sync(self, lease: Lease, connection: Connection, connector: Any,
             halt: threading.Event) -> datetime:
        options: dict[str, Any] = {}
        if isinstance(connector, WebhookConnector):
            since = inbox.last_processed_at(self.db, connection.id)
            options["since_last_webhook"] = since.isoformat() if since else None
        with self.metrics.sync_duration.labels(lease.connector).time():
            summary = work.run_sync(self.db, self.config, connection, connector, options, halt)
        upserted, emitted = work.summary_counts(summary)
        self.metrics.customers_upserted.labels(lease.connector).inc(upserted)
        self.metrics.events_emitted.labels(lease.connector).inc(emitted)
        if not getattr(summary, "skipped", None):
            self.plugins.notify_sync_finished(summary)
        if getattr(summary, "skipped", None):
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
            stored = inbox.pending(self.db, connection.id, batch_size)
            if not stored:
                return
            if self._disconnects(connection, stored):
                return
            busy = self._fetch(connection, connector, stored, max_attempts)
            if busy:
                return

    def _fetch(self, connection: Connection, connector: WebhookConnector,
               stored: list[inbox.StoredNotice], max_attempts: int) -> bool:
        """Fetch and write these notices together; if that fails, each one on its own, so
        one poisoned notice (an id the provider refuses) holds back only itself. True when
        another process has the connection (the notices wait)."""
        ids = [s.id for s in stored]
        fetching = work.FetchingConnector(connector, [s.notice for s in stored])
        try:
            summary = work.run_sync(self.db, self.config, connection, fetching,
                                    {"webhook_notices": len(ids)})
            if getattr(summary, "skipped", None):
                return True
            error = summary.error
        except Exception as exc:
            summary, error = None, f"{type(exc).__name__}: {exc}"
        if error and len(stored) > 1:
            log.info("webhook fetch of %d notices failed (%s); fetching each on its own",
                     len(ids), error)
            return any(self._fetch(connection, connector, [one], max_attempts)
                       for one in stored)
        if error:
            inbox.mark_failed(self.db, ids, error, max_attempts)
            self.metrics.webhook_notices.labels(connection.connector, "failed").inc(len(ids))
            log.warning("webhook notice %s %s failed: %s", stored[0].notice.entity,
                        stored[0].notice.entity_id, error)
            return False
        inbox.mark_processed(self.db, ids)
        upserted, emitted = work.summary_counts(summary)
        self.metrics.customers_upserted.labels(connection.connector).inc(upserted)
        self.metrics.events_emitted.labels(connection.connector).inc(emitted)
        self.metrics.webhook_notices.labels(connection.connector, "processed").inc(len(ids))
        return False

    def _disconnects(self, connection: Connection, stored: list[inbox.StoredNotice]) -> bool:
        """An app-disconnect notice (Jobber APP_DISCONNECT): the tokens are dead, so mark the
        connection disconnected for its owner to reconnect, and fetch nothing."""
        gone = [s for s in stored if s.notice.entity == DISCONNECT_ENTITY
                and s.notice.operation == DISCONNECT_OPERATION]
        if not gone:
            return False
        with self.db.begin() as conn:
            set_status(conn, connection.id, "disconnected",
                       f"the app was disconnected in {connection.connector}")
        inbox.mark_processed(self.db, [s.id for s in gone])
        self.metrics.webhook_notices.labels(connection.connector, "disconnected").inc(len(gone))
        log.warning("%s says the app was disconnected: connection marked disconnected",
                    connection.connector)
        return True


def _now() -> datetime:
    return datetime.now(UTC)
