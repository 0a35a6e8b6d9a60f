"""Benchmark: the QuickBooks connector's own cost per 1,000-customer page.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1/test python bench/bench_quickbooks.py \
        [--customers 10000] [--rounds 3]

An "instant" QuickBooks on loopback HTTP (every page pre-serialised, answered without
work) so only our side is measured:
1. connector alone: pages fetched over real HTTP, JSON parsed, mapped to records;
2. end to end: the same pass through the sync engine, with the real token vault (tokens
   decrypted from PostgreSQL), normalising and upserting into a fresh database;
3. a second end-to-end pass over the same data (every customer unchanged).
Target: under 50 ms per 1,000-customer page for (2).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fakes.qbo_data import customer  # noqa: E402
from fakes.qbo_kit import REALM, connected_business, qbo_config  # noqa: E402

from blippsync.connector import ConnectorContext  # noqa: E402
from blippsync.database import Database  # noqa: E402
from blippsync.sync import SyncOptions, sync_connection  # noqa: E402
from blippsync.testing.database import fresh_database, session_server_url  # noqa: E402
from blippsync.vault import connector_settings, store_tokens  # noqa: E402
from connectors.quickbooks import QuickBooksConnector  # noqa: E402

PAGE = 1000


def instant_server(customers: int) -> tuple[ThreadingHTTPServer, str]:
    pages: dict[int, bytes] = {}
    rows = [customer(i, minutes=i / 100, active=i % 10 != 0) for i in range(1, customers + 1)]
    for start in range(1, customers + 2, PAGE):
        chunk = rows[start - 1:start - 1 + PAGE]
        body = ({"QueryResponse": {"Customer": chunk, "startPosition": start,
                                   "maxResults": len(chunk)}} if chunk else {"QueryResponse": {}})
        pages[start] = json.dumps({**body, "time": "2026-11-20T04:15:11.919-08:00"}).encode()
    empty = json.dumps({"QueryResponse": {}, "time": "2026-11-20T04:15:11.919-08:00"}).encode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            query = unquote(parse_qs(urlsplit(self.path).query)["query"][0])
            entity_customer = "FROM Customer" in query
            start = int(query.split("STARTPOSITION ")[1].split()[0])
            raw = pages.get(start, empty) if entity_customer else empty
            self.send_response(200)
            self.send_header("Content-Type", "application/json;charset=UTF-8")
            self.send_header("intuit_tid", "1-bench")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


class Tokens:
    def access_token(self) -> str:
        return "bench-access-token"

    def refresh_after_rejection(self, rejected_token: str) -> str:
        return "bench-access-token"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    pages = -(-args.customers // PAGE)
    server, url = instant_server(args.customers)
    connector = QuickBooksConnector()
    tmp = Path(tempfile.mkdtemp())
    alone, full, unchanged = [], [], []
    with session_server_url() as postgres, fresh_database(postgres) as database_url:
        config = qbo_config(tmp, database_url, url, use_cdc=False, max_in_flight=10)
        db = Database(database_url, pool_size=3)
        settings = connector_settings(config, "quickbooks")
        with httpx.Client() as http:
            for _ in range(args.rounds):
                ctx = ConnectorContext(business_id=None, connection_id=None,  # type: ignore[arg-type]
                                       account_id=REALM, settings=settings, cursor=None,
                                       http=http, log=logging.getLogger("bench"), tokens=Tokens())
                started = time.perf_counter()
                n = sum(1 for _ in connector.sync(ctx))
                alone.append((time.perf_counter() - started) / pages * 1000)
            assert n >= args.customers
        for _ in range(args.rounds):
            _, connection = connected_business(db, config, "RT1-bench-0000000000")
            store_tokens(db, config, connection.business_id, "quickbooks", REALM,
                         "RT1-bench-0000000000", "bench-access-token",
                         datetime(2099, 1, 1, tzinfo=UTC))
            for into in (full, unchanged):
                from blippsync.connections import get_connection

                with db.connect() as conn:
                    fresh = get_connection(conn, connection.id)
                started = time.perf_counter()
                summary = sync_connection(db, config, fresh, connector,
                                          SyncOptions(full=True))
                into.append((time.perf_counter() - started) / pages * 1000)
                assert summary.error is None, summary.error
        db.dispose()
    server.shutdown()
    print(f"{args.customers} customers, {pages} pages of {PAGE}, {args.rounds} rounds "
          "(median ms per 1,000-customer page):")
    print(f"  connector alone (HTTP + parse + map):        {statistics.median(alone):7.1f}")
    print(f"  end to end, new customers (engine upsert):   {statistics.median(full):7.1f}")
    print(f"  end to end, unchanged customers:             {statistics.median(unchanged):7.1f}")


if __name__ == "__main__":
    main()
