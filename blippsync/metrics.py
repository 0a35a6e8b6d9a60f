"""Prometheus metrics of one daemon process, in a registry of its own.

Counters are bumped by the daemon around the calls it makes (a sync's summary, the
journey engine's answers, webhook receipts). Gauges that describe the shared database
(due-step lag, pending notices and events) are read from PostgreSQL at scrape time,
so every replica reports the same truth.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from blippsync.database import Database

log = logging.getLogger(__name__)

# Each statement answers NULL when its table does not exist yet (a journey-less schema).
DB_GAUGES_SQL = sa.text("""
SELECT
  (SELECT count(*) FROM public.trigger_events WHERE routing_state = 'pending') AS events_pending,
  (SELECT count(*) FROM public.webhook_deliveries WHERE state = 'pending') AS webhooks_pending,
  (SELECT count(*) FROM public.webhook_deliveries WHERE state = 'failed') AS webhooks_failed,
  (SELECT count(*) FROM public.connections WHERE status <> 'connected') AS connections_down,
  (SELECT count(*) FROM public.connections WHERE lease_owner IS NOT NULL
     AND lease_expires_at > now()) AS connections_leased,
  (SELECT coalesce(extract(epoch FROM now() - min(next_step_at)), 0)
     FROM public.customer_enrollments
     WHERE status = 'active' AND next_step_at <= now()) AS due_step_lag_seconds
""")


class DaemonMetrics:
    """Every metric the service exposes on /metrics."""

    def __init__(self, db: Database | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.syncs = Counter("blippsync_syncs", "Connection syncs finished, by outcome.",
                             ["connector", "outcome"], registry=r)
        self.customers_upserted = Counter("blippsync_customers_upserted",
                                          "Customers created or updated by syncs and webhooks.",
                                          ["connector"], registry=r)
        self.events_emitted = Counter("blippsync_events_emitted",
                                      "Trigger events stored (new, not historical).",
                                      ["connector"], registry=r)
        self.events_routed = Counter("blippsync_events_routed", "Trigger events routed.",
                                     registry=r)
        self.enrollments = Counter("blippsync_enrollments", "Customers enrolled into journeys.",
                                   registry=r)
        self.steps_sent = Counter("blippsync_steps_sent", "Journey steps sent.", registry=r)
        self.steps_failed = Counter("blippsync_steps_failed", "Journey steps that failed.",
                                    registry=r)
        self.token_refreshes = Counter("blippsync_token_refreshes", "OAuth tokens refreshed.",
                                       registry=r)
        self.token_refresh_failures = Counter("blippsync_token_refresh_failures",
                                              "OAuth token refreshes that failed.", registry=r)
        self.webhook_deliveries = Counter("blippsync_webhook_deliveries",
                                          "Webhook requests received, by outcome.",
                                          ["connector", "outcome"], registry=r)
        self.webhook_notices = Counter("blippsync_webhook_notices",
                                       "Webhook notices processed into fetches, by outcome.",
                                       ["connector", "outcome"], registry=r)
        self.api_throttle_wait = Counter("blippsync_api_throttle_wait_seconds",
                                         "Seconds spent waiting on remote API rate limits.",
                                         ["connector"], registry=r)
        self.sync_duration = Histogram("blippsync_sync_duration_seconds",
                                       "Duration of connection syncs.", ["connector"],
                                       registry=r, buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 1800))
        self.scheduler_ticks = Counter("blippsync_scheduler_ticks", "Scheduler loop passes.",
                                       registry=r)
        self.leases_held = Gauge("blippsync_leases_held",
                                 "Connections this daemon holds a lease on.", registry=r)
        self.lease_lost = Counter("blippsync_leases_lost",
                                  "Leases found taken over while working.", registry=r)
        self.qr_scans = Counter("blippsync_qr_scans", "QR code scans, by outcome (counted, "
                                "not_counted: a repeat or over a limit, unknown).", ["outcome"],
                                registry=r)
        self.feedback_posts = Counter("blippsync_feedback_posts", "Feedback form posts, by "
                                      "outcome (stored, low_rating, invalid, forged, "
                                      "rate_limited).", ["outcome"], registry=r)
        if db is not None:
            r.register(DatabaseGauges(db))


class DatabaseGauges(Collector):
    """Gauges read from the shared database when /metrics is scraped."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def describe(self) -> list[Any]:
        return []  # collected lazily: never touch the database at registration

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self.db.connect() as conn:
                row = conn.execute(DB_GAUGES_SQL).one()._mapping
        except Exception as exc:  # the scrape still answers; /healthz says what is wrong
            log.warning("metrics: database gauges unavailable: %s", exc)
            yield GaugeMetricFamily("blippsync_database_up", "Database reachable at scrape.", 0)
            return
        yield GaugeMetricFamily("blippsync_database_up", "Database reachable at scrape.", 1)
        helps = {
            "events_pending": "Trigger events waiting to be routed.",
            "webhooks_pending": "Webhook notices waiting to be fetched.",
            "webhooks_failed": "Webhook notices that gave up.",
            "connections_down": "Connections not in the connected state.",
            "connections_leased": "Connections leased by any daemon right now.",
            "due_step_lag_seconds": "How late the oldest due journey step is.",
        }
        for key, help_text in helps.items():
            value = row[key]
            yield GaugeMetricFamily(f"blippsync_{key}", help_text, float(value or 0))
