"""Figures for issue 16 at scale: one business with 1,000,000 customers and their events.

1. `blippsync export` of that business (jsonl and csv), each in its own process: rows/s
   and the process's peak RSS (os.wait4), beside the export of a tiny business, to show
   memory stays flat whatever the size; then `blippsync restore` of the jsonl export into
   another database.
2. The console's pages served by uvicorn on loopback (as `blippsync run` serves them):
   median and worst of N warm requests per page, and EXPLAIN ANALYZE of the searches.

    python bench/bench_console_export.py [--customers 1000000] [--requests 20]
                                         [--skip-export] [--skip-console]

Uses $TEST_DATABASE_URL (or an embedded server it stops) and fresh databases it drops.
The machine it ran on is shared: see the figures' conditions in docs/console.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import sqlalchemy as sa

from blippsync.config import load_config
from blippsync.console.auth import hash_password
from blippsync.console.queries import SEARCH_SQL, search_parameters
from blippsync.database import Database
from blippsync.http import HttpServer, HttpState, build_app
from blippsync.metrics import DaemonMetrics
from blippsync.testing.database import fresh_database, session_server_url

PASSWORD = "bench operator password"
SEED = [
    # the big business and 50 small ones
    """INSERT INTO public.businesses (id, name, created_by, timezone, subscription_status)
       VALUES ('00000000-0000-4000-8000-000000000001', 'Big Plumbing', 'big@example.com',
               'America/New_York', 'active')""",
    """INSERT INTO public.businesses (name, created_by) SELECT 'Small ' || g,
       'small' || g || '@example.com' FROM generate_series(1, 50) g""",
    """INSERT INTO public.customers (business_id, name, email, phone, source, external_id,
                                    created_at)
       SELECT '00000000-0000-4000-8000-000000000001',
              (ARRAY['Ada','Grace','Alan','Edsger','Barbara','Donald','Margaret','Ken',
                     'Frances','John'])[1 + g % 10] || ' ' ||
              (ARRAY['Lovelace','Hopper','Turing','Dijkstra','Liskov','Knuth','Hamilton',
                     'Thompson','Allen','Backus','Ritchie','Kay','Wirth'])[1 + (g / 10) % 13],
              'c' || g || '@example.com', '+1212' || (2000000 + g), 'quickbooks', 'QB-' || g,
              now() - (g % 365) * interval '1 day'
       FROM generate_series(1, :customers) g""",
    """INSERT INTO public.customer_identities (business_id, source, external_id, customer_id)
       SELECT business_id, 'csv', 'CSV-' || external_id, id FROM public.customers
       WHERE business_id = '00000000-0000-4000-8000-000000000001' AND random() < 0.1""",
    """INSERT INTO public.connections (id, business_id, connector, account_id, last_success_at,
                                      cursor, cursor_updated_at)
       VALUES ('00000000-0000-4000-8000-0000000000c1', '00000000-0000-4000-8000-000000000001',
               'quickbooks', '9130', now() - interval '10 minutes', '{}',
               now() - interval '10 minutes')""",
    """INSERT INTO public.sync_runs (business_id, connection_id, connector, status, started_at,
                                    finished_at, duration_ms, customers_updated)
       SELECT '00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-0000000000c1',
              'quickbooks', CASE WHEN g % 17 = 0 THEN 'failed' ELSE 'succeeded' END,
              now() - g * interval '15 minutes', now() - g * interval '15 minutes'
              + (2 + g % 9) * interval '1 second', (2 + g % 9) * 1000, g % 40
       FROM generate_series(1, 5760) g""",
    """INSERT INTO public.trigger_events (business_id, connection_id, source, event_type,
                                         customer_id, occurred_at, payload, dedupe_key,
                                         routing_state, routed_at)
       SELECT c.business_id, '00000000-0000-4000-8000-0000000000c1', 'quickbooks',
              'invoice_paid', c.id, c.created_at, jsonb_build_object('amount', 100),
              'quickbooks:9130:invoice:' || c.external_id || ':' || 'paid', 'routed', c.created_at
       FROM public.customers c
       WHERE c.business_id = '00000000-0000-4000-8000-000000000001'""",
    """INSERT INTO public.sequences (id, business_id, name, trigger_source, trigger_event_type,
                                    status)
       VALUES ('00000000-0000-4000-8000-0000000000a1', '00000000-0000-4000-8000-000000000001',
               'Review after invoice', 'quickbooks', 'invoice_paid', 'active')""",
    """INSERT INTO public.sequence_steps (sequence_id, step_order, step_type, delay_minutes,
                                         message_purpose, channel)
       VALUES ('00000000-0000-4000-8000-0000000000a1', 0, 'email', 120, 'review', 'email'),
              ('00000000-0000-4000-8000-0000000000a1', 1, 'sms', 1440, 'follow_up', 'sms')""",
    # a tenth of the customers were enrolled: most completed, some active
    """INSERT INTO public.customer_enrollments (sequence_id, customer_id, current_step, status,
                                               enrolled_at, next_step_at)
       SELECT '00000000-0000-4000-8000-0000000000a1', id, 1,
              CASE WHEN random() < 0.2 THEN 'active' ELSE 'completed' END, created_at,
              now() + random() * interval '2 days'
       FROM public.customers WHERE business_id = '00000000-0000-4000-8000-000000000001'
         AND random() < 0.1""",
    """INSERT INTO public.review_requests (business_id, customer_id, enrollment_id, sequence_id,
                                          step_order, purpose, status, channel, sent_at,
                                          send_key, metadata, created_at)
       SELECT '00000000-0000-4000-8000-000000000001', e.customer_id, e.id, e.sequence_id, 0,
              'review', CASE WHEN random() < 0.05 THEN 'failed' ELSE 'sent' END, 'email',
              now() - random() * interval '90 days', e.id || ':' || '0',
              jsonb_build_object('to', 'someone@example.com'),
              now() - random() * interval '90 days'
       FROM public.customer_enrollments e""",
    """INSERT INTO public.enrollment_decisions (business_id, trigger_event_id, customer_id,
                                               sequence_id, enrollment_id, decision, reason)
       SELECT '00000000-0000-4000-8000-000000000001', t.id, e.customer_id, e.sequence_id, e.id,
              'enrolled', 'enrolled'
       FROM public.customer_enrollments e JOIN public.trigger_events t
         ON t.customer_id = e.customer_id""",
    "ANALYZE",
]
BIG = "00000000-0000-4000-8000-000000000001"


def seed(db: Database, customers: int) -> None:
    for statement in SEED:
        started = time.perf_counter()
        with db.begin() as conn:
            conn.execute(sa.text(statement), {"customers": customers})
        print(f"  seed: {' '.join(statement.split())[:60]}... {time.perf_counter() - started:.1f}s")


def run_measured(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Run a command; its wall time and its own peak RSS in MiB (os.wait4)."""
    started = time.perf_counter()
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _pid, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    if status != 0:
        raise SystemExit(f"{' '.join(args)} failed: {proc.stderr.read().decode()}")  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    return elapsed, usage.ru_maxrss // 1024


def bench_export(server: str, url: str, db: Database) -> None:
    env = {**os.environ, "BLIPPSYNC_DATABASE_URL": url, "BLIPPSYNC_LOGGING_FORMAT": "text"}
    with db.connect() as conn:
        small = str(conn.execute(sa.text("SELECT id FROM businesses WHERE name = 'Small 1'"))
                    .scalar_one())
    folder = Path(tempfile.mkdtemp(prefix="blippsync-bench-export-"))
    try:
        for label, business, fmt in (("tiny business", small, "jsonl"),
                                     ("1M business", BIG, "jsonl"), ("1M business", BIG, "csv")):
            out = folder / f"{business}-{fmt}"
            elapsed, rss = run_measured([sys.executable, "-m", "blippsync", "export",
                                         "--business", business, "--format", fmt, "--output",
                                         str(out)], env)
            import json

            manifest = json.loads((out / "manifest.json").read_text())
            rows = sum(t["rows"] for t in manifest["tables"])
            size = sum(t["bytes"] for t in manifest["tables"]) / 2**20
            print(f"export {label} ({fmt}): {rows:,} rows, {size:,.0f} MiB in {elapsed:.1f}s = "
                  f"{rows / elapsed:,.0f} rows/s; peak RSS {rss} MiB")
        with fresh_database(server) as other:
            elapsed, rss = run_measured([sys.executable, "-m", "blippsync", "restore",
                                         str(folder / f"{BIG}-jsonl")],
                                        {**env, "BLIPPSYNC_DATABASE_URL": other})
            print(f"restore 1M business (jsonl, into another database): {rows:,} rows in "
                  f"{elapsed:.1f}s = {rows / elapsed:,.0f} rows/s; peak RSS {rss} MiB")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def bench_console(url: str, db: Database, requests: int) -> None:
    config = load_config(None, environ={
        "BLIPPSYNC_DATABASE_URL": url, "BLIPPSYNC_CONSOLE_ENABLED": "true",
        "BLIPPSYNC_CONSOLE_PASSWORD_HASH": hash_password(PASSWORD)})
    server = HttpServer(build_app(HttpState(config=config, db=db, plugins=None,
                                            metrics=DaemonMetrics(db))), "127.0.0.1", 0)
    server.start()
    base = f"http://127.0.0.1:{server.port}/console"
    with db.connect() as conn:
        customer = conn.execute(sa.text(
            "SELECT customer_id FROM review_requests WHERE business_id = :b LIMIT 1"),
            {"b": BIG}).scalar_one()
    pages = {"overview": "/", "business (1M customers)": f"/b/{BIG}",
             "customer": f"/c/{customer}", "search name prefix": "/search?q=grace%20hop",
             "search last name": "/search?q=hopper",
             "search email": "/search?q=c777777@example.com",
             "search phone": "/search?q=(212)%20277-7777",
             "search external id": "/search?q=QB-777777",
             "search in business": f"/search?q=ada&business={BIG}"}
    try:
        with httpx.Client() as client:
            client.post(f"{base}/login", data={"password": PASSWORD})
            for name, path in pages.items():
                times = []
                for _ in range(requests + 2):
                    started = time.perf_counter()
                    response = client.get(base + path)
                    times.append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200, (name, response.status_code)
                times = times[2:]  # warm-up
                print(f"page {name:28s} median {statistics.median(times):6.1f} ms, "
                      f"worst {max(times):6.1f} ms ({requests} requests)")
    finally:
        server.stop()
    with db.connect() as conn:
        for typed in ("grace hop", "hopper", "c777777@example.com", "(212) 277-7777",
                      "QB-777777"):
            print(f"\nEXPLAIN ANALYZE search {typed!r}:")
            for (line,) in conn.execute(sa.text("EXPLAIN (ANALYZE, COSTS OFF) "
                                                + str(SEARCH_SQL.text)),
                                        search_parameters(typed, None)):
                print("   ", line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--skip-export", action="store_true")
    parser.add_argument("--skip-console", action="store_true")
    args = parser.parse_args()
    with session_server_url() as server, fresh_database(server) as url:
        print(f"{os.cpu_count()} CPUs; PostgreSQL at {server.split('@')[-1]}")
        db = Database(url, pool_size=4)
        try:
            started = time.perf_counter()
            seed(db, args.customers)
            print(f"seeded in {time.perf_counter() - started:.0f}s")
            if not args.skip_console:
                bench_console(url, db, args.requests)
            if not args.skip_export:
                bench_export(server, url, db)
        finally:
            db.dispose()


if __name__ == "__main__":
    main()
