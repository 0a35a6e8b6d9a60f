"""What `blippsync status` reports: the database, its migrations and what it holds."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from blippsync.config import Config
from blippsync.connections import NEEDS_HUMAN_SQL
from blippsync.database import Database, redact_url
from blippsync.errors import ConfigError
from blippsync.migrations import status as migration_status

# table -> label; counted only when the table exists (a fresh database has none)
COUNTED_TABLES = {
    "businesses": "businesses",
    "customers": "customers",
    "connections": "connections",
    "trigger_events": "trigger events",
    "customer_enrollments": "enrollments",
    "review_requests": "review requests",
}
_PENDING_EVENTS = sa.text("SELECT count(*) FROM public.trigger_events "
                          "WHERE routing_state = 'pending'")
_CONNECTIONS = sa.text("""
    SELECT c.id, c.business_id, b.name AS business, c.connector, c.account_id, c.status,
           c.status_reason, c.last_success_at, c.last_sync_at, c.last_error, c.last_error_at,
           c.consecutive_failures, c.next_sync_at, c.token_expires_at,
           CASE WHEN c.lease_expires_at > now() THEN c.lease_owner END AS synced_by,
           extract(epoch FROM now() - c.cursor_updated_at)::bigint AS cursor_age_seconds,
           (SELECT count(*) FROM public.customer_enrollments e
              JOIN public.sequences s ON s.id = e.sequence_id
             WHERE s.business_id = c.business_id AND e.status = 'active'
               AND e.next_step_at <= now()) AS due_steps,
           """ + NEEDS_HUMAN_SQL + """ AS needs_human
    FROM public.connections c JOIN public.businesses b ON b.id = c.business_id
    WHERE CAST(:business AS uuid) IS NULL OR c.business_id = :business
    ORDER BY b.name, c.connector
""")
# The daemons seen lately (table from migration 0040; absent before it is applied).
_DAEMONS = sa.text("""
    SELECT id, hostname, pid, version, started_at, last_tick_at,
           extract(epoch FROM now() - last_tick_at)::bigint AS seconds_since_tick
    FROM blippsync.daemons WHERE stopped_at IS NULL ORDER BY started_at
""")


# Messages whose delivery needs a look: outcome unknown (never retried blindly), failed,
# or reported undelivered by the carrier.
_TROUBLED_MESSAGES = sa.text("""
    SELECT status, count(*) AS n, count(*) FILTER (WHERE created_at > now() - interval '1 day')
           AS last_day
    FROM public.review_requests WHERE status IN ('unknown', 'failed', 'undelivered')
    GROUP BY status
""")


def connection_rows(conn: Connection, business_id: uuid.UUID | None = None
                    ) -> list[dict[str, Any]]:
    """Every connection (or one business's) with its health and `needs_human`: a token
    expired, or failing for a day. The one place that rule is written."""
    return [dict(r._mapping) for r in conn.execute(_CONNECTIONS, {"business": business_id})]


def daemon_rows(conn: Connection) -> list[dict[str, Any]]:
    """The daemons running (or crashed without saying so), oldest first."""
    if not conn.execute(sa.text("SELECT to_regclass('blippsync.daemons')")).scalar():
        return []
    return [dict(r._mapping) for r in conn.execute(_DAEMONS)]


def collect_status(db: Database, config: Config | None = None) -> dict[str, Any]:
    report: dict[str, Any] = {"database": {"url": redact_url(db.url)}}
    if config is not None:
        from blippsync.channels.readiness import active_channels, check_channels

        try:
            warnings = check_channels(config)
        except ConfigError as exc:
            warnings = [str(exc)]
        report["channels"] = {"active": active_channels(config), "warnings": warnings}
    report["database"]["server_version"] = db.check()
    migrations = migration_status(db)
    report["migrations"] = {
        "applied": [f"{m.version:04d}_{m.name}" for m in migrations.applied],
        "pending": [f"{m.version:04d}_{m.name}" for m in migrations.pending],
    }
    counts: dict[str, int] = {}
    with db.connect() as conn:
        for table, label in COUNTED_TABLES.items():
            if conn.execute(sa.text("SELECT to_regclass(:t)"), {"t": f"public.{table}"}).scalar():
                count = sa.text(f"SELECT count(*) FROM public.{table}")
                counts[label] = conn.execute(count).scalar_one()
        if "trigger events" in counts:
            counts["events pending routing"] = conn.execute(_PENDING_EVENTS).scalar_one()
        if "review requests" in counts:
            troubled = {r.status: (r.n, r.last_day) for r in conn.execute(_TROUBLED_MESSAGES)}
            for state in ("unknown", "failed", "undelivered"):
                total, last_day = troubled.get(state, (0, 0))
                counts[f"messages {state}"] = total
                counts[f"messages {state} (last 24 h)"] = last_day
        connections = connection_rows(conn) if "connections" in counts else []
        daemons = daemon_rows(conn)
    report["counts"] = counts
    report["connections"] = connections
    report["daemons"] = daemons
    # a human is needed (connections.NEEDS_HUMAN_SQL, the rule /healthz uses too)
    report["needs_attention"] = [c for c in connections if c["needs_human"]]
    return report


def age_text(seconds: Any) -> str:
    """A duration the way people say it: 45s, 12m, 3h, 2d ("-" when unknown)."""
    if seconds is None:
        return "-"
    seconds = int(seconds)
    for unit, size in (("d", 86_400), ("h", 3600), ("m", 60)):
        if abs(seconds) >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
