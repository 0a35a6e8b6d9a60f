"""Journey engine figures: routing events/s with realistic rules, execution steps/s through
the outbox channel with 1,000,000 enrollments of which 10,000 are due, and the due query's
plan.

    python bench/bench_journeys.py [--events 50000] [--enrollments 1000000] [--due 10000]
                                   [--outbox-dir /dev/shm/blippsync-bench-outbox]

Uses $TEST_DATABASE_URL (or the embedded server) and a fresh database it drops afterwards.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from blippsync.config import load_config
from blippsync.database import Database
from blippsync.journeys import execute_due_steps, route_events
from blippsync.journeys import queries as q
from blippsync.journeys.rules import HELD_STATUSES
from blippsync.plugins import load_plugins
from blippsync.testing.database import fresh_database, session_server_url

NOW = datetime(2025, 6, 10, 16, 0, tzinfo=UTC)  # noon in New York
BUSINESSES = 100

SEED_BUSINESSES = """
    INSERT INTO public.businesses (name, created_by, timezone, subscription_status,
                                   google_review_url)
    SELECT 'Bench ' || g, 'owner' || g || '@example.com', 'America/New_York',
           CASE WHEN g % 20 = 0 THEN 'canceled' ELSE 'active' END, 'https://g.page/r/b' || g
    FROM generate_series(1, :n) g
"""
SEED_SEQUENCES = """
    INSERT INTO public.sequences (business_id, name, trigger_source, trigger_event_type, status,
                                  settings)
    SELECT b.id, v.name, 'csv', v.event, v.status, CAST(v.settings AS jsonb)
    FROM public.businesses b,
         (VALUES ('Review after job', 'job_completed', 'active', '{"email_hours": "00:00-24:00"}'),
                 ('Thank-you after job', 'job_completed', 'active', '{}'),
                 ('Review after invoice', 'invoice_paid', 'active', '{}'),
                 ('Old journey', 'job_completed', 'paused', '{}'),
                 ('Winter promo', 'invoice_paid', 'draft', '{}'))
             AS v(name, event, status, settings)
"""
SEED_STEPS = """
    INSERT INTO public.sequence_steps (sequence_id, step_order, step_type, delay_minutes,
                                       message_purpose, message_config, channel)
    SELECT s.id, 0, 'email', 0, CASE WHEN s.name LIKE 'Thank%' THEN 'thank_you' ELSE 'review' END,
           '{"subject": "Thanks {{ customer.first_name }}!",
             "body": "Hi {{ customer.first_name }}, how did we do? {{ review_link }}"}',
           'email'
    FROM public.sequences s
"""
SEED_CUSTOMERS = """
    INSERT INTO public.customers (business_id, name, email, phone, source, external_id,
                                  opted_out, archived)
    SELECT b.id, 'Customer ' || g, 'c' || g || '@example.com', '+1555' || lpad(g::text, 7, '0'),
           'csv', 'ext-' || g, g % 50 = 0, g % 77 = 0
    FROM generate_series(1, :n) g
    JOIN (SELECT id, row_number() OVER (ORDER BY id) - 1 AS r FROM public.businesses) b
      ON b.r = g % :b
"""
# Every customer enrolled in each of the business's sequences; `:due` of them due now in the
# active review sequence, the rest finished or scheduled for later.
SEED_ENROLLMENTS = """
    INSERT INTO public.customer_enrollments (sequence_id, customer_id, status, current_step,
                                             enrolled_at, next_step_at)
    SELECT s.id, c.id,
           CASE WHEN x.r <= :due AND s.name = 'Review after job' THEN 'active'
                WHEN x.r % 3 = 0 THEN 'active' ELSE 'completed' END,
           CASE WHEN x.r <= :due AND s.name = 'Review after job' THEN 0
                WHEN x.r % 3 = 0 THEN 0 ELSE 1 END,
           :now - interval '400 days',
           CASE WHEN x.r <= :due AND s.name = 'Review after job' THEN :now
                WHEN x.r % 3 = 0 THEN :now + interval '2 days' ELSE NULL END
    FROM (SELECT id, business_id, row_number() OVER (ORDER BY id) AS r FROM public.customers) x
    JOIN public.customers c ON c.id = x.id
    JOIN public.sequences s ON s.business_id = c.business_id
    WHERE s.status IN ('active', 'paused')
      AND (s.name <> 'Review after job' OR x.r <= :due OR x.r % 3 <> 0)
    LIMIT :limit
"""
SEED_EVENTS = """
    WITH c AS (SELECT id, business_id, row_number() OVER (ORDER BY id) - 1 AS r
               FROM public.customers)
    INSERT INTO public.trigger_events (business_id, source, event_type, customer_id, occurred_at,
                                       dedupe_key, historical)
    SELECT c.business_id, 'csv', CASE WHEN g % 3 = 0 THEN 'invoice_paid' ELSE 'job_completed' END,
           CASE WHEN g % 100 = 0 THEN NULL ELSE c.id END, :now, 'bench:' || g, g % 40 = 0
    FROM generate_series(1, :n) g JOIN c ON c.r = (g::bigint * 7919) % :customers
"""


def _exec(db: Database, sql: str, **params: object) -> None:
    with db.begin() as conn:
        conn.execute(sa.text(sql), params)


def _config(url: str, outbox: Path):
    folder = Path(tempfile.mkdtemp())
    (folder / "config.toml").write_text(f'[database]\nurl = "{url}"\n'
                                        f'[channels]\noutbox_dir = "{outbox}"\n')
    return load_config(folder / "config.toml", environ={})


def bench_routing(url: str, events: int) -> None:
    db = Database(url)
    _exec(db, SEED_BUSINESSES, n=BUSINESSES)
    _exec(db, SEED_SEQUENCES)
    _exec(db, SEED_STEPS)
    customers = max(events // 2, 1000)
    _exec(db, SEED_CUSTOMERS, n=customers, b=BUSINESSES)
    # history for the cooldown and cap rules: a fifth of the customers enrolled 100 days ago
    _exec(db, "INSERT INTO public.customer_enrollments (sequence_id, customer_id, status, "
              "enrolled_at, current_step) SELECT s.id, c.id, 'completed', :at, 1 "
              "FROM public.customers c JOIN public.sequences s ON s.business_id = c.business_id "
              "AND s.name = 'Review after job' WHERE ('x' || substr(c.id::text, 1, 2))::bit(8)"
              "::int % 5 = 0", at=NOW - timedelta(days=100))
    _exec(db, SEED_EVENTS, n=events, now=NOW, customers=customers)
    _exec(db, "UPDATE public.trigger_events SET routing_state = 'historical' WHERE historical")
    _exec(db, "ANALYZE")
    config = _config(url, Path(tempfile.mkdtemp()))
    started = time.perf_counter()
    summary = route_events(db, config, now=NOW)
    seconds = time.perf_counter() - started
    print(f"routing: {summary.events} events in {seconds:.2f} s = "
          f"{summary.events / seconds:,.0f} events/s (batch {config['journeys.route_batch_size']})")
    print(f"  enrolled {summary.enrolled}, skipped {dict(sorted(summary.skipped.items()))}")
    db.dispose()


def bench_execution(url: str, enrollments: int, due: int, outbox: Path) -> None:
    db = Database(url)
    _exec(db, SEED_BUSINESSES, n=BUSINESSES)
    _exec(db, "UPDATE public.businesses SET subscription_status = 'active'")
    _exec(db, SEED_SEQUENCES)
    _exec(db, SEED_STEPS)
    customers = enrollments // 4 + due
    print(f"seeding {customers:,} customers and {enrollments:,} enrollments ...", flush=True)
    t = time.perf_counter()
    _exec(db, "UPDATE public.customers SET opted_out = false")
    _exec(db, SEED_CUSTOMERS.replace("g % 50 = 0, g % 77 = 0", "false, false"),
          n=customers, b=BUSINESSES)
    _exec(db, SEED_ENROLLMENTS, due=due, now=NOW, limit=enrollments)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("VACUUM ANALYZE public.customer_enrollments"))
    with db.connect() as conn:
        total = conn.execute(sa.text("SELECT count(*) FROM public.customer_enrollments")).scalar()
        due_now = conn.execute(sa.text(
            "SELECT count(*) FROM public.customer_enrollments e JOIN public.sequences s "
            "ON s.id = e.sequence_id WHERE e.status = 'active' AND s.status = 'active' "
            "AND e.next_step_at <= :now"), {"now": NOW}).scalar()
        active = [r.id for r in conn.execute(q.ACTIVE_SEQUENCE_IDS,
                                             {"held": list(HELD_STATUSES)})]
        plan = conn.execute(sa.text("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) "
                                    + str(q.CLAIM_DUE.text)),
                            {"sequences": active, "now": NOW, "limit": 500}).scalars().all()
    print(f"  seeded in {time.perf_counter() - t:.0f} s: {total:,} enrollments, {due_now:,} due")
    print("due-steps claim plan (batch 500):")
    for line in plan:
        print("   ", line if len(line) < 160 else line[:150] + " ...])")
    config = _config(url, outbox)
    plugins = load_plugins()
    started = time.perf_counter()
    summary = execute_due_steps(db, config, plugins, now=NOW)
    seconds = time.perf_counter() - started
    print(f"execution: {summary.sent} steps sent through outbox ({outbox}) in {seconds:.2f} s = "
          f"{summary.sent / seconds:,.0f} steps/s (batch {config['journeys.execute_batch_size']})")
    files = sum(1 for _ in outbox.rglob("*.eml"))
    print(f"  outbox files: {files:,}; completed {summary.completed}, claimed {summary.claimed}")
    db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--enrollments", type=int, default=1_000_000)
    parser.add_argument("--due", type=int, default=10_000)
    parser.add_argument("--outbox-dir", default="/dev/shm/blippsync-bench-outbox")
    parser.add_argument("--only", choices=["routing", "execution"])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    outbox = Path(args.outbox_dir)
    shutil.rmtree(outbox, ignore_errors=True)
    with session_server_url() as server:
        if args.only != "execution":
            with fresh_database(server) as url:
                bench_routing(url, args.events)
        if args.only != "routing":
            with fresh_database(server) as url:
                bench_execution(url, args.enrollments, args.due, outbox)
    shutil.rmtree(outbox, ignore_errors=True)


if __name__ == "__main__":
    main()
