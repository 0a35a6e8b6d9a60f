"""The periodic jobs besides connection work: journeys, token refresh, reconciliation,
retention. Each is safe to run on every replica at once (claims, advisory locks, or a
once-per-period task row decide who does what)."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import httpx
import sqlalchemy as sa

from blippsync import __version__, webhook_inbox
from blippsync.config import Config
from blippsync.connections import Connection, get_connection
from blippsync.connector import OAuthCapableConnector, OAuthConnector, WebhookConnector
from blippsync.daemon import heartbeat, tasks
from blippsync.database import Database
from blippsync.errors import AuthError
from blippsync.logs import log_context
from blippsync.metrics import DaemonMetrics
from blippsync.plugins import Plugins
from blippsync.run_retention import delete_old_runs
from blippsync.runner import PassFilter, import_inbox, run_journeys, run_maintenance
from blippsync.vault.provider import refresh_if_due

log = logging.getLogger(__name__)
TASK_LEASE_SECONDS = 3600.0
JOURNEY_MAX_BATCHES_PER_TICK = 10  # one tick stays short; the next one carries on
RETENTION_PERIOD_SECONDS = 86_400.0

TOKENS_DUE_SQL = sa.text("""
SELECT id FROM public.connections
WHERE status = 'connected' AND connector = ANY(:connectors)
  AND token_expires_at IS NOT NULL
  AND token_expires_at < now() + make_interval(secs => :ahead_seconds)
ORDER BY token_expires_at
LIMIT 200
""")
# Due at a random point of the next :spread_seconds (never later than already due): all at
# once, 10,000 connections were one herd that took the daemons a whole sync interval to
# work through, every connection's ordinary sync waiting behind it.
RECONCILE_SQL = sa.text("""
UPDATE public.connections
SET next_sync_at = least(next_sync_at,
                         now() + random() * make_interval(secs => :spread_seconds))
WHERE status = 'connected' AND connector = ANY(:connectors) AND next_sync_at > now()
""")


@dataclass
class Jobs:
    db: Database
    config: Config
    plugins: Plugins
    metrics: DaemonMetrics
    owner: str

    def journeys(self) -> None:
        """Route pending events into enrollments, then execute due steps (bounded)."""
        done = run_journeys(self.db, self.config, self.plugins,
                            batch_size=int(self.config["daemon.journey_batch_size"]),
                            max_batches=JOURNEY_MAX_BATCHES_PER_TICK)
        self.metrics.events_routed.inc(done.routing.events)
        self.metrics.enrollments.inc(done.routing.enrolled)
        self.metrics.steps_sent.inc(done.execution.sent)
        self.metrics.steps_failed.inc(done.execution.failed)

    def csv_inbox(self) -> None:
        """Import csv files dropped into the inbox (a file another replica is importing is
        skipped by the sync engine's per-connection lock and left in place)."""
        if "csv" not in self.plugins.connectors:
            return
        # a file another process holds is left for the next scan, never waited for
        for entry, summary in import_inbox(self.db, self.config, self.plugins,
                                           PassFilter(lock_wait_seconds=0)):
            counts = summary.counts
            log.info("csv inbox: %s: %s", entry["file"], summary.error or
                     f"{counts.created} created, {counts.updated} updated, "
                     f"{counts.emitted} events")
            self.metrics.syncs.labels("csv", "failed" if summary.error else "succeeded").inc()
            self.metrics.customers_upserted.labels("csv").inc(counts.created + counts.updated)
            self.metrics.events_emitted.labels("csv").inc(counts.emitted)

    def refresh_tokens(self) -> None:
        """Have the vault refresh every token expiring soon, before a sync needs it."""
        oauth = {name: info.connector for name, info in self.plugins.connectors.items()
                 if info.connector.needs_oauth and isinstance(info.connector, OAuthConnector)}
        if not oauth:
            return
        with self.db.connect() as conn:
            ids = [r.id for r in conn.execute(TOKENS_DUE_SQL, {
                "connectors": list(oauth),
                "ahead_seconds": self.config["daemon.token_refresh_ahead_seconds"]})]
        if not ids:
            return
        with httpx.Client(timeout=30.0, headers={"User-Agent": f"blippsync/{__version__}"}) as http:
            for connection_id in ids:
                with self.db.connect() as conn:
                    connection = get_connection(conn, connection_id)
                self._refresh_one(connection, oauth[connection.connector], http)

    def _refresh_one(self, connection: Connection, connector: OAuthCapableConnector,
                     http: httpx.Client) -> None:
        """Refresh when the token expires within the sweep's horizon (the vault refreshes
        under a lock, so a replica that lost the race finds it fresh and does nothing)."""
        ahead = int(self.config["daemon.token_refresh_ahead_seconds"])
        with log_context(business_id=connection.business_id, connection_id=connection.id):
            try:
                refreshed = refresh_if_due(self.db, self.config, connection, connector, http,
                                           ahead_seconds=ahead)
            except AuthError as exc:
                self.metrics.token_refresh_failures.inc()
                log.warning("token refresh refused, the owner must reconnect: %s", exc)
                return
            except Exception as exc:
                self.metrics.token_refresh_failures.inc()
                log.warning("token refresh failed (will retry): %s: %s",
                            type(exc).__name__, exc)
                return
            if refreshed:
                self.metrics.token_refreshes.inc()

    def reconcile(self) -> None:
        """Once per period across replicas: make every webhook-driven connection due within
        one default sync interval (spread, not all at once). Its sync (QuickBooks: CDC from
        its cursor) catches any change whose webhook never arrived."""
        names = [name for name, info in self.plugins.connectors.items()
                 if isinstance(info.connector, WebhookConnector)]
        if not names:
            return

        def make_due() -> None:
            with self.db.begin() as conn:
                count = conn.execute(RECONCILE_SQL, {
                    "connectors": names,
                    "spread_seconds": float(self.config["daemon.sync_interval_seconds"]),
                }).rowcount
            log.info("reconciliation: %d webhook-driven connections due within %ss", count,
                     self.config["daemon.sync_interval_seconds"])

        tasks.run_once_per_period(
            self.db, self.owner, "reconcile",
            period_seconds=float(self.config["daemon.reconcile_interval_hours"]) * 3600,
            lease_seconds=TASK_LEASE_SECONDS, work=make_due)

    def retention(self) -> None:
        """Once a day across replicas: old inbox rows and heartbeats, old sync runs and
        routed trigger events, journey archiving."""

        def clean() -> None:
            days = int(self.config["daemon.retention_days"])
            notices = webhook_inbox.delete_old(self.db, days)
            daemons = heartbeat.delete_old(self.db, days)
            log.info("retention: deleted %d webhook notices, %d daemon rows", notices, daemons)
            runs = delete_old_runs(self.db, self.config)
            log.info("retention: deleted %d no-op sync runs older than %d days, %d sync runs "
                     "older than %d days", runs.noop_deleted,
                     self.config["sync.noop_run_retention_days"], runs.old_deleted,
                     self.config["sync.run_retention_days"])
            done = run_maintenance(self.db, self.config)
            log.info("retention: deleted %d routed trigger events older than %d days; archived "
                     "%d finished enrollments, stopped %d of archived sequences, moved the "
                     "history of %d merged customers", done.events_deleted,
                     self.config["journeys.event_retention_days"], done.archived,
                     done.stopped_archived_sequences, done.merged_customers)

        tasks.run_once_per_period(self.db, self.owner, "retention",
                                  period_seconds=RETENTION_PERIOD_SECONDS,
                                  lease_seconds=TASK_LEASE_SECONDS, work=clean)
