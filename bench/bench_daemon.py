"""Daemon figures: idle CPU and RSS, and the webhook endpoint under a bounded loopback load.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1/test python bench/bench_daemon.py

Creates a fresh migrated database (dropped afterwards), starts one `blippsync run`
replica as a child process with 20 idle connections, measures its CPU time and RSS over
an idle minute (from /proc), then sends a bounded number of signed webhook requests
from a few client threads on loopback and reports requests/s and latency percentiles.
Only loopback addresses are used; every loop is bounded in count and time.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import test_daemon_support as support  # noqa: E402
from test_daemon_support import FakeRemote, sign, webhook_body  # noqa: E402

from blippsync.businesses import add_business  # noqa: E402
from blippsync.connections import ensure_connection  # noqa: E402
from blippsync.database import Database  # noqa: E402
from blippsync.testing.database import fresh_database, session_server_url  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime


def rss_mb(pid: int) -> float:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE_BYTES / 2**20


def load(base: str, requests: int, clients: int) -> tuple[float, list[float], int]:
    """`requests` signed webhook posts from `clients` threads; (seconds, latencies, errors)."""
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    per_client = requests // clients

    def client(n: int) -> None:
        nonlocal errors
        with httpx.Client(timeout=10) as http:
            for i in range(per_client):
                body = webhook_body([{"id": f"bench-{n}-{i}", "account": f"acct-{i % 20}",
                                      "item": f"item-{n}-{i}"}])
                started = time.perf_counter()
                response = http.post(f"{base}/webhooks/loopback", content=body,
                                     headers={"content-type": "application/json",
                                              support.SIGNATURE_HEADER: sign(body)})
                took = time.perf_counter() - started
                with lock:
                    latencies.append(took)
                    errors += response.status_code != 200

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    return time.perf_counter() - started, latencies, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle-seconds", type=float, default=60.0)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with session_server_url() as server, fresh_database(server) as url, FakeRemote() as remote:
        db = Database(url, pool_size=2)
        for n in range(20):
            business = add_business(db, name=f"Bench {n}", owner_email=f"b{n}@bench.test",
                                    timezone="UTC")
            with db.begin() as conn:
                ensure_connection(conn, business, "loopback", f"acct-{n}")
        tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-daemon-{os.getpid()}"
        tmp.mkdir(parents=True, exist_ok=True)
        port = support.free_port()
        # production-like cadence: the default 2 s ticks, 5 s journeys, long sync interval
        config = support.write_config(tmp / "bench.toml", url, remote.url, port=port,
                                      tick_seconds=2.0, journey_interval_seconds=5.0,
                                      lease_seconds=60, sync_interval_seconds=3600)
        with (tmp / "daemon.log").open("wb") as log:
            proc = subprocess.Popen([sys.executable, str(ROOT / "tests/test_daemon_support.py"),
                                     str(config)], stdout=subprocess.DEVNULL, stderr=log,
                                    env={**os.environ, "PYTHONPATH": str(ROOT)})
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            time.sleep(20)  # the start-up passes (first syncs, reconciliation) are done
            cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
            time.sleep(args.idle_seconds)
            cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
            idle_rss = rss_mb(proc.pid)
            print(f"idle: {100 * (cpu1 - cpu0) / (t1 - t0):.2f}% of one core over "
                  f"{t1 - t0:.0f}s, RSS {idle_rss:.1f} MB")
            seconds, latencies, errors = load(base, args.requests, args.clients)
            latencies.sort()
            q = statistics.quantiles(latencies, n=100)
            print(f"webhooks: {len(latencies)} requests from {args.clients} clients in "
                  f"{seconds:.1f}s = {len(latencies) / seconds:.0f} req/s; latency p50 "
                  f"{q[49] * 1000:.1f} ms, p99 {q[98] * 1000:.1f} ms, max "
                  f"{latencies[-1] * 1000:.1f} ms; non-200: {errors}; RSS after "
                  f"{rss_mb(proc.pid):.1f} MB")
        finally:
            proc.terminate()
            proc.wait(30)
            db.dispose()


if __name__ == "__main__":
    main()
