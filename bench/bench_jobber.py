"""Benchmark: the Jobber connector's own overhead per 100 clients.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1/test python bench/bench_jobber.py \
        [--clients 20000] [--rounds 3]

Against the loopback fake with its cost bucket switched off (an "instant" Jobber), times
1. the connector alone: GraphQL pages fetched over real loopback HTTP, parsed, mapped
   into records (no database);
2. end to end: the same pass through the vault-free sync engine (`sync_connection` with
   an in-process token provider), which normalises and upserts the customers into a
   fresh database;
3. a second pass of (2), where every customer is unchanged.
Reports milliseconds per 100 clients; the target is under 50 ms per 100 for (2).
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fakes.jobber_fake import (  # noqa: E402
    ACCOUNT_ID,
    BASE_TIME,
    FakeTokens,
    JobberFake,
    make_client,
    make_ctx,
)

from blippsync.businesses import add_business  # noqa: E402
from blippsync.config import load_config  # noqa: E402
from blippsync.connections import ensure_connection, get_connection  # noqa: E402
from blippsync.database import Database  # noqa: E402
from blippsync.records import CustomerRecord  # noqa: E402
from blippsync.sync import SyncOptions, sync_connection  # noqa: E402
from blippsync.testing.database import fresh_database, session_server_url  # noqa: E402
from connectors.jobber import JobberConnector  # noqa: E402

NOW = BASE_TIME + timedelta(days=400)


def per_100(seconds: float, clients: int) -> float:
    return seconds / clients * 100 * 1000


def connector_only(fake: JobberFake, http: httpx.Client) -> float:
    started = time.perf_counter()
    n = sum(isinstance(r, CustomerRecord)
            for r in JobberConnector().sync(make_ctx(fake, http, now=NOW)))
    seconds = time.perf_counter() - started
    assert n == len(fake.clients), n
    return seconds


def end_to_end(fake: JobberFake, http: httpx.Client, tmp: Path, url: str) -> tuple[float, float]:
    config_path = tmp / "bench_jobber.toml"
    config_path.write_text(f'[database]\nurl = "{url}"\n[jobber]\ngraphql_url = '
                           f'"{fake.graphql_url}"\n')
    config = load_config(config_path, environ={})
    db = Database(url, pool_size=2)
    try:
        business = add_business(db, name="Bench Lawns", owner_email="o@bench.test",
                                timezone="America/Chicago")
        with db.begin() as conn:
            connection = ensure_connection(conn, business, "jobber", ACCOUNT_ID)
        times = []
        for _ in range(2):
            with db.connect() as conn:
                connection = get_connection(conn, connection.id)
            started = time.perf_counter()
            summary = sync_connection(db, config, connection, JobberConnector(),
                                      SyncOptions(now=NOW, full=True), http=http,
                                      tokens=FakeTokens(fake))
            times.append(time.perf_counter() - started)
            assert summary.ok, summary.error
        return times[0], times[1]
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    clients = [make_client(i) for i in range(1, args.clients + 1)]
    fake = JobberFake(clients=clients, bucket=False)
    import tempfile

    with fake, httpx.Client(timeout=30) as http, tempfile.TemporaryDirectory() as tmp, \
            session_server_url() as server:
        only = [connector_only(fake, http) for _ in range(args.rounds)]
        first, second = [], []
        for _ in range(args.rounds):
            with fresh_database(server) as url:
                a, b = end_to_end(fake, http, Path(tmp), url)
            first.append(a)
            second.append(b)
    n = args.clients
    print(f"Jobber connector, {n} clients, {fake.requests} GraphQL requests in all, "
          f"median of {args.rounds}:")
    print(f"  connector only (HTTP + parse + map): {per_100(statistics.median(only), n):6.2f} "
          "ms / 100 clients")
    print(f"  end to end, new customers (+ normalise + upsert): "
          f"{per_100(statistics.median(first), n):6.2f} ms / 100 clients")
    print(f"  end to end, unchanged customers: "
          f"{per_100(statistics.median(second), n):6.2f} ms / 100 clients")


if __name__ == "__main__":
    main()
