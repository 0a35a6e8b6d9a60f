"""What each console page shows, read from the database in one short connection per page.

Nothing here selects a token, key or credential column; free text that may quote a
provider's answer (last errors) goes through `redact` before it reaches a page.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from blippsync.console.charts import RunBar, Series, daily_bars, run_durations
from blippsync.database import Database
from blippsync.errors import NotFoundError
from blippsync.journeys.catalog import list_sequences
from blippsync.journeys.explain import explain_customer, story_lines
from blippsync.normalize import normalize_phone
from blippsync.redaction import redact
from blippsync.status import connection_rows, daemon_rows

DAYS_CHARTED = 14
RUNS_CHARTED = 30
SEARCH_LIMIT = 50

_QUEUES = sa.text("""
SELECT (SELECT count(*) FROM public.trigger_events WHERE routing_state = 'pending')
           AS events_to_route,
       (SELECT count(*) FROM public.customer_enrollments
         WHERE status = 'active' AND next_step_at <= now()) AS steps_due,
       (SELECT count(*) FROM public.review_requests WHERE status = 'unknown')
           AS messages_unknown,
       (SELECT count(*) FROM public.webhook_deliveries WHERE state = 'pending')
           AS webhooks_pending
""")
_TASKS = sa.text("""
SELECT name, last_started_at, last_finished_at, last_error,
       CASE WHEN lease_expires_at > now() THEN lease_owner END AS lease_owner,
       CASE WHEN lease_expires_at > now() THEN lease_expires_at END AS lease_expires_at
FROM blippsync.daemon_tasks ORDER BY name
""")
_BUSINESSES = sa.text("""
SELECT b.id, b.name, b.subscription_status, b.timezone,
       (SELECT count(*) FROM public.connections c WHERE c.business_id = b.id) AS connections
FROM public.businesses b ORDER BY lower(b.name), b.id LIMIT 500
""")
_BUSINESS = sa.text("""
SELECT id, name, subscription_status, timezone, country, created_at
FROM public.businesses WHERE id = :id
""")
_RUNS_PER_DAY = sa.text("""
SELECT (started_at AT TIME ZONE 'UTC')::date AS day, status, count(*) AS n
FROM public.sync_runs
WHERE started_at >= :since AND (CAST(:business AS uuid) IS NULL OR business_id = :business)
GROUP BY 1, 2
""")
_MESSAGES_PER_DAY = sa.text("""
SELECT (created_at AT TIME ZONE 'UTC')::date AS day, status, count(*) AS n
FROM public.review_requests
WHERE created_at >= :since AND (CAST(:business AS uuid) IS NULL OR business_id = :business)
GROUP BY 1, 2
""")
_LAST_RUNS = sa.text("""
SELECT r.id, r.connection_id, r.connector, r.status, r.full_sync, r.started_at, r.finished_at,
       r.duration_ms, r.customers_created, r.customers_updated, r.customers_rejected,
       r.events_emitted, r.error
FROM public.sync_runs r WHERE r.business_id = :business
ORDER BY r.started_at DESC LIMIT 20
""")
_RUN_DURATIONS = sa.text("""
SELECT started_at, duration_ms, status FROM (
    SELECT started_at, duration_ms, status FROM public.sync_runs
    WHERE connection_id = :connection AND duration_ms IS NOT NULL
    ORDER BY started_at DESC LIMIT :limit) AS recent
ORDER BY started_at
""")
_RECENT_MESSAGES = sa.text("""
SELECT r.created_at, r.sent_at, r.channel, r.purpose, r.status, r.attempts, r.last_error,
       r.clicked_at, r.customer_id, c.name AS customer_name, c.email AS customer_email,
       s.name AS sequence
FROM public.review_requests r
LEFT JOIN public.customers c ON c.id = r.customer_id
LEFT JOIN public.sequences s ON s.id = r.sequence_id
WHERE r.business_id = :business
ORDER BY r.created_at DESC LIMIT 25
""")
_INBOUND = sa.text("""
SELECT received_at, from_number, keyword, body FROM public.inbound_sms
WHERE customer_id = :id ORDER BY received_at
""")
_SEARCH = sa.text(r"""
WITH hits AS (
    (SELECT id FROM public.customers
      WHERE lower(name) LIKE :prefix
        AND (CAST(:business AS uuid) IS NULL OR business_id = :business) LIMIT :limit)
    UNION
    (SELECT id FROM public.customers
      WHERE lower(substring(name FROM '(\S+)\s*$')) LIKE :prefix
        AND (CAST(:business AS uuid) IS NULL OR business_id = :business) LIMIT :limit)
    UNION
    (SELECT id FROM public.customers
      WHERE lower(email) LIKE :prefix
        AND (CAST(:business AS uuid) IS NULL OR business_id = :business) LIMIT :limit)
    UNION
    (SELECT id FROM public.customers
      WHERE phone = :phone AND (CAST(:business AS uuid) IS NULL OR business_id = :business)
      LIMIT :limit)
    UNION
    (SELECT id FROM public.customers
      WHERE external_id = :exact
        AND (CAST(:business AS uuid) IS NULL OR business_id = :business) LIMIT :limit)
    UNION
    (SELECT customer_id FROM public.customer_identities
      WHERE external_id = :exact
        AND (CAST(:business AS uuid) IS NULL OR business_id = :business) LIMIT :limit)
    UNION
    (SELECT id FROM public.customers WHERE id = CAST(:id AS uuid))
)
SELECT c.id, c.business_id, b.name AS business, c.name, c.email, c.phone, c.source,
       c.external_id, c.opted_out, c.archived, c.deleted_at
FROM hits JOIN public.customers c ON c.id = hits.id
JOIN public.businesses b ON b.id = c.business_id
ORDER BY lower(c.name) NULLS LAST, lower(c.email) NULLS LAST, c.id
LIMIT :limit
""")
SEARCH_SQL = _SEARCH  # bench/bench_console.py shows its plan


def connection_state(c: dict[str, Any]) -> str:
    if c["status"] == "token_expired":
        return "token expired"
    if c["status"] == "disconnected":
        return "disconnected"
    return "failing" if c["consecutive_failures"] else "healthy"


def advice(c: dict[str, Any]) -> tuple[str, str | None]:
    """What an operator should do about a connection: a sentence, and the command if any."""
    state = connection_state(c)
    reconnect = (f"blippsync connect {c['connector']} --business {c['business_id']}"
                 if c["connector"] in ("quickbooks", "jobber") else None)
    why = f" ({c['status_reason']})" if c["status_reason"] else ""
    if state == "token expired":
        return (f"The {c['connector']} sign-in expired or was revoked{why}. The business owner "
                "must connect again.", reconnect)
    if state == "disconnected":
        return f"Disconnected{why}; nothing syncs until it is connected again.", reconnect
    if state == "failing" and c["needs_human"]:
        return (f"Failing for over a day ({c['consecutive_failures']} passes in a row). Read "
                "the last error and fix its cause, then retry at once:", "blippsync run-once")
    if state == "failing":
        return "Retrying on its own with backoff; look again if it still fails tomorrow.", None
    return "Nothing to do.", None


def _connections(conn: Connection, business_id: uuid.UUID | None) -> list[dict[str, Any]]:
    rows = connection_rows(conn, business_id)
    for c in rows:
        c["state"] = connection_state(c)
        c["advice"], c["command"] = advice(c)
        c["last_error"] = redact(c["last_error"]) if c["last_error"] else None
        c["status_reason"] = redact(c["status_reason"]) if c["status_reason"] else None
    # the ones needing a human first, then failing, then the rest
    order = {"token expired": 1, "failing": 2, "disconnected": 3, "healthy": 4}
    rows.sort(key=lambda c: (not c["needs_human"], order[c["state"]], c["business"],
                             c["connector"]))
    return rows


def _days(today: date) -> list[date]:
    return [today - timedelta(days=DAYS_CHARTED - 1 - i) for i in range(DAYS_CHARTED)]


def _per_day(conn: Connection, query: sa.TextClause, business_id: uuid.UUID | None,
             groups: dict[str, tuple[str, str, set[str]]], title: str) -> Any:
    days = _days(datetime.now(UTC).date())
    since = datetime.combine(days[0], datetime.min.time(), UTC)
    counts: dict[tuple[date, str], int] = {}
    for row in conn.execute(query, {"since": since, "business": business_id}):
        for key, (_label, _color, statuses) in groups.items():
            if row.status in statuses:
                counts[(row.day, key)] = counts.get((row.day, key), 0) + row.n
    series = [Series(label, color, [counts.get((d, key), 0) for d in days])
              for key, (label, color, _s) in groups.items()]
    return daily_bars(title, days, series)


RUN_GROUPS = {"ok": ("succeeded", "#3b82f6", {"succeeded"}),
              "failed": ("failed", "#e5484d", {"failed"}),
              "other": ("interrupted or running", "#a1a1aa", {"interrupted", "running"})}
MESSAGE_GROUPS = {"sent": ("sent", "#10b981", {"sent", "delivered", "clicked"}),
                  "failed": ("failed or undelivered", "#e5484d", {"failed", "undelivered"}),
                  "other": ("scheduled or unknown", "#f59e0b", {"scheduled", "unknown"})}


def overview(db: Database) -> dict[str, Any]:
    with db.connect() as conn:
        connections = _connections(conn, None)
        states = {s: 0 for s in ("healthy", "failing", "token expired", "disconnected")}
        for c in connections:
            states[c["state"]] += 1
        return {
            "connections": connections,
            "states": states,
            "needs_human": [c for c in connections if c["needs_human"]],
            "daemons": daemon_rows(conn),
            "tasks": [dict(r._mapping) for r in conn.execute(_TASKS)],
            "leases": [c for c in connections if c["synced_by"]],
            "queues": dict(conn.execute(_QUEUES).one()._mapping),
            "businesses": [dict(r._mapping) for r in conn.execute(_BUSINESSES)],
            "runs_chart": _per_day(conn, _RUNS_PER_DAY, None, RUN_GROUPS,
                                   f"Sync runs per day (UTC, last {DAYS_CHARTED} days)"),
            "messages_chart": _per_day(conn, _MESSAGES_PER_DAY, None, MESSAGE_GROUPS,
                                       f"Messages per day (UTC, last {DAYS_CHARTED} days)"),
        }


def business(db: Database, business_id: uuid.UUID) -> dict[str, Any]:
    with db.connect() as conn:
        row = conn.execute(_BUSINESS, {"id": business_id}).first()
        if row is None:
            raise NotFoundError(f"no business with id {business_id}")
        connections = _connections(conn, business_id)
        for c in connections:
            recent = conn.execute(_RUN_DURATIONS, {"connection": c["id"],
                                                   "limit": RUNS_CHARTED})
            c["durations_chart"] = run_durations(
                f"{c['connector']} {c['account_id']}: last {RUNS_CHARTED} run durations "
                "(seconds)".replace("  ", " "),
                [RunBar(f"{r.started_at:%m-%d %H:%M}", r.duration_ms / 1000,
                        r.status == "failed") for r in recent])
        runs = [dict(r._mapping) for r in conn.execute(_LAST_RUNS, {"business": business_id})]
        for r in runs:
            r["error"] = redact(r["error"]) if r["error"] else None
        messages = [dict(r._mapping)
                    for r in conn.execute(_RECENT_MESSAGES, {"business": business_id})]
        for m in messages:
            m["last_error"] = redact(m["last_error"]) if m["last_error"] else None
        page = {
            "business": dict(row._mapping),
            "connections": connections,
            "runs": runs,
            "messages": messages,
            "runs_chart": _per_day(conn, _RUNS_PER_DAY, business_id, RUN_GROUPS,
                                   f"Sync runs per day (UTC, last {DAYS_CHARTED} days)"),
            "messages_chart": _per_day(conn, _MESSAGES_PER_DAY, business_id, MESSAGE_GROUPS,
                                       f"Messages per day (UTC, last {DAYS_CHARTED} days)"),
        }
    page["sequences"] = list_sequences(db, str(business_id))
    return page


def customer(db: Database, customer_id: uuid.UUID) -> dict[str, Any]:
    report = explain_customer(db, str(customer_id))
    with db.connect() as conn:
        report["inbound"] = [dict(r._mapping) for r in conn.execute(_INBOUND,
                                                                      {"id": customer_id})]
    for m in report["messages"]:
        m["last_error"] = redact(m["last_error"]) if m["last_error"] else None
    report["story"] = story_lines(report)
    return report


def _like_prefix(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def search_parameters(q: str, business_id: uuid.UUID | None, country: str = "US"
                      ) -> dict[str, Any]:
    """The bind parameters of the search for what a person typed."""
    text = q.strip()
    phone, _problem = normalize_phone(text, country) if any(ch.isdigit() for ch in text) \
        else (None, None)
    try:
        as_id: uuid.UUID | None = uuid.UUID(text)
    except ValueError:
        as_id = None
    return {"prefix": _like_prefix(text), "exact": text, "phone": phone, "id": as_id,
            "business": business_id, "limit": SEARCH_LIMIT}


def business_name(db: Database, business_id: uuid.UUID) -> str | None:
    with db.connect() as conn:
        return conn.execute(sa.text("SELECT name FROM public.businesses WHERE id = :id"),
                            {"id": business_id}).scalar()


def search(db: Database, q: str, business_id: uuid.UUID | None = None,
           country: str = "US") -> list[dict[str, Any]]:
    """Customers whose name, last name or email starts with `q`, or whose phone, external
    id or id is `q` (fewer than two characters find nothing: they would match everyone)."""
    if len(q.strip()) < 2:
        return []
    with db.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(
            _SEARCH, search_parameters(q, business_id, country))]
