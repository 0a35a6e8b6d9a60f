"""Benchmark: N connections across many businesses, D `blippsync run` daemons, one PostgreSQL.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1/test python bench/bench_scale.py
    python bench/bench_scale.py --n 10000 --daemons 4 --workers 4 --interval 900 --duration 1000

For each N, in a fresh database on TEST_DATABASE_URL's server (dropped afterwards):
- a loopback fake remote serving one account per connection (a few items each) with a
  per-request latency (default 150 ms, like a QuickBooks API call), counting requests and
  requests in flight per account, and every sync pass (begin/end) per connection;
- N businesses, each with one scheduled connection (loopback connector, the test
  suite's webhook-capable connector over real HTTP) and, for every other one, a csv
  connection (never scheduled: a claim must not wade through them);
- D daemon processes (`Daemon.run()`, production tick/lease settings);
- idle phase: nothing due; daemon CPU, the database CPU of their backends and the
  transactions they commit per scheduler tick, and the claim statement's own cost;
- active phase: each connection due once per interval at a uniformly spread offset;
  the lag from due to the pass starting at the fake (p50/p99/max; passes still waiting at
  the end count with their lag so far), connections not started within their interval,
  overlapping passes of one connection (must be 0), per-account request budgets seen at
  the fake, database connections used; and, with --kill, SIGKILL of one daemon half way:
  how long until the passes it held are taken over.
A summary table closes the run. Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import test_daemon_support as support  # noqa: E402

from blippsync.daemon.leases import CLAIM_SQL  # noqa: E402
from blippsync.runner import FILE_CONNECTORS  # noqa: E402
from blippsync.testing.database import fresh_database  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ITEMS_PER_ACCOUNT = 2


def cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class ScaleFake:
    """The remote on loopback: many accounts, a latency per request, budgets counted."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.lock = threading.Lock()
        self.items: dict[str, list[dict[str, Any]]] = {}
        self.account_of: dict[str, str] = {}  # connection id -> account (begin/end name those)
        self.begins: dict[str, list[float]] = defaultdict(list)
        self.passes: dict[str, list[list[float]]] = defaultdict(list)  # [begin, end or nan]
        self.open: dict[str, dict[str, list[float]]] = defaultdict(dict)
        self.in_flight: dict[str, int] = defaultdict(int)
        self.max_in_flight: dict[str, int] = defaultdict(int)
        self.recent: dict[str, deque[float]] = defaultdict(deque)
        self.max_per_minute: dict[str, int] = defaultdict(int)
        self.requests = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _serve(self) -> None:
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                account = q.get("account") or fake.account_of.get(q.get("conn", ""), "?")
                now = time.time()
                with fake.lock:
                    fake.requests += 1
                    fake.in_flight[account] += 1
                    fake.max_in_flight[account] = max(fake.max_in_flight[account],
                                                      fake.in_flight[account])
                    window = fake.recent[account]
                    window.append(now)
                    while window and window[0] < now - 60:
                        window.popleft()
                    fake.max_per_minute[account] = max(fake.max_per_minute[account], len(window))
                    if url.path == "/begin":
                        record = [now, float("nan")]
                        fake.passes[q["conn"]].append(record)
                        fake.open[q["conn"]][q["pass"]] = record
                try:
                    time.sleep(fake.latency)
                    with fake.lock:
                        if url.path == "/changes":
                            after, limit = int(q["after"]), int(q["limit"])
                            found = [i for i in fake.items.get(account, ()) if i["seq"] > after]
                            return self._send(found[:limit])
                        if url.path == "/end":
                            record = fake.open[q["conn"]].pop(q["pass"], None)
                            if record is not None:
                                record[1] = time.time()
                    self._send({})
                finally:
                    with fake.lock:
                        fake.in_flight[account] -= 1

            do_GET = do_POST = _serve  # noqa: N815

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 1024

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a SIGKILLed daemon resets its connections: expected here

        self.server = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> ScaleFake:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add_account(self, account: str, items: int) -> None:
        at = "2026-01-01T12:00:00+00:00"
        self.items[account] = [{"seq": n + 1, "account": account, "id": f"{account}-{n}",
                                "name": f"Customer {account}-{n}",
                                "email": f"{account}-{n}@loop.test", "at": at}
                               for n in range(items)]


@dataclass
class Figures:
    n: int
    daemons: int
    workers: int
    interval: float
    passes: int = 0
    lag: list[float] = field(default_factory=list)
    starved: int = 0
    overlapping: int = 0
    max_per_minute: int = 0
    max_in_flight: int = 0
    idle_cpu_pct: float = 0.0        # per daemon, mean
    idle_db_cpu_pct: float = 0.0     # their backends, all together
    xacts_per_tick: float = 0.0      # per daemon per scheduler tick, idle
    idle_claim_ms: float = 0.0
    idle_claim_buffers: int = 0
    claim_ms: float = 0.0
    claim_buffers: int = 0
    db_connections: int = 0
    takeover: list[float] = field(default_factory=list)
    active_cpu_pct: float = 0.0
    busy_db_cpu: float = 0.0         # seconds, backends of the daemons, active phase
    statements: list[str] = field(default_factory=list)  # idle, per daemon tick


def setup(url: str, n: int, fake: ScaleFake) -> list[str]:
    """N businesses with one loopback connection each (not due yet), csv ones beside."""
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO customer_sources (name) VALUES ('loopback') "
                     "ON CONFLICT DO NOTHING")
        conn.execute("""
            INSERT INTO businesses (name, created_by)
            SELECT 'Biz ' || g, 'owner' || g || '@loop.test' FROM generate_series(1, %s) g""",
                     (n,))
        conn.execute("""
            INSERT INTO connections (business_id, connector, account_id, next_sync_at)
            SELECT id, 'loopback', 'acct-' || substr(created_by, 6, strpos(created_by, '@') - 6),
                   now() + interval '1 day'
            FROM businesses""")
        conn.execute("""
            INSERT INTO connections (business_id, connector, next_sync_at)
            SELECT id, 'csv', now() - interval '30 days' FROM businesses
            WHERE substr(created_by, 6, strpos(created_by, '@') - 6)::int % 2 = 0""")
        for cid, account in conn.execute(
                "SELECT id, account_id FROM connections WHERE connector = 'loopback'"):
            fake.account_of[str(cid)] = account
        # steady state: the daily tasks ran recently (a first start would make every
        # webhook-driven connection due at once: the reconciliation, see docs/scaling.md)
        conn.execute("INSERT INTO blippsync.daemon_tasks (name, last_finished_at) "
                     "VALUES ('reconcile', now()), ('retention', now())")
        conn.execute("ANALYZE")
    for i in range(1, n + 1):
        fake.add_account(f"acct-{i}", ITEMS_PER_ACCOUNT)
    return list(fake.account_of)


class Daemons:
    def __init__(self, tmp: Path, url: str, fake: ScaleFake, count: int, workers: int,
                 interval: float, lease_seconds: int) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLIPPSYNC_")}
        env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
        for d in range(count):
            port = support.free_port()
            config = support.write_config(
                tmp / f"d{d}.toml", url, fake.url, port=port, id=f"bench-{d}",
                workers=workers, sync_interval_seconds=int(interval), tick_seconds=2.0,
                journey_interval_seconds=5.0, lease_seconds=lease_seconds,
                shutdown_grace_seconds=10.0, retry_seconds=60)
            text = config.read_text().replace('level = "INFO"', 'level = "WARNING"')
            config.write_text(text.replace("pool_size = 4", f"pool_size = {workers + 2}"))
            log = (tmp / f"d{d}.log").open("wb")
            self.procs.append(subprocess.Popen(
                [sys.executable, str(ROOT / "tests" / "test_daemon_support.py"), str(config)],
                stdout=subprocess.DEVNULL, stderr=log, env=env, cwd=tmp))
            self.ports.append(port)
        deadline = time.monotonic() + 60
        for d, port in enumerate(self.ports):
            while True:
                if self.procs[d].poll() is not None:
                    raise SystemExit(f"daemon {d} exited:\n{(tmp / f'd{d}.log').read_text()}")
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise SystemExit(f"daemon {d} not serving after 60 s")
                time.sleep(0.2)

    def cpu(self) -> list[float]:
        return [cpu_seconds(p.pid) for p in self.procs]

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def backend_pids(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()")]


def commits(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT xact_commit FROM pg_stat_database "
                                "WHERE datname = current_database()").fetchone()[0])


def statements_reset(url: str) -> bool:
    """Reset pg_stat_statements when the server has it loaded (not on a shared server
    unless its operator preloaded it): then the idle phase's statements are listed."""
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            conn.execute("SELECT pg_stat_statements_reset()")
        return True
    except psycopg.Error:
        return False


def top_statements(url: str, per: float, limit: int = 12) -> list[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute("""
            SELECT calls, total_exec_time, rows, regexp_replace(query, '\\s+', ' ', 'g')
            FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid
            WHERE d.datname = current_database() ORDER BY calls DESC LIMIT %s""",
                            (limit,)).fetchall()
    return [f"{calls / per:7.2f} calls/tick {ms / per:7.3f} ms/tick  {query[:110]}"
            for calls, ms, _rows, query in rows]


def claim_cost(url: str) -> tuple[float, int, float, int]:
    """The claim statement's execution time and buffers at this N, with nothing due (what
    every idle tick of every daemon pays) and with a few due; best of 5, rolled back."""
    sql = CLAIM_SQL.text.replace(":unscheduled", "%(unscheduled)s").replace(
        ":limit", "%(limit)s").replace(":owner", "%(owner)s").replace(
        ":lease_seconds", "%(lease_seconds)s")
    params = {"unscheduled": list(FILE_CONNECTORS), "limit": 4, "owner": "probe",
              "lease_seconds": 1}
    figures: list[float] = []
    with psycopg.connect(url) as conn:
        for make_due in (False, True):
            best: tuple[float, int] | None = None
            for _ in range(5):
                if make_due:
                    conn.execute("UPDATE connections SET next_sync_at = now() - interval '1 s' "
                                 "WHERE id IN (SELECT id FROM connections "
                                 "WHERE connector = 'loopback' LIMIT 8)")
                row = conn.execute("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + sql,
                                   params).fetchone()[0][0]
                conn.rollback()
                plan = row["Plan"]
                found = (float(row["Execution Time"]),
                         int(plan.get("Shared Hit Blocks", 0) + plan.get("Shared Read Blocks", 0)))
                best = found if best is None else min(best, found)
            assert best is not None
            figures += best
    return figures[0], int(figures[1]), figures[2], int(figures[3])


def measure(args: argparse.Namespace, n: int) -> Figures:
    fig = Figures(n, args.daemons, args.workers, args.interval)
    with tempfile.TemporaryDirectory() as tmp, ScaleFake(args.latency) as fake, \
            fresh_database(args.database_url) as url:
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        ids = setup(plain, n, fake)
        fig.idle_claim_ms, fig.idle_claim_buffers, fig.claim_ms, fig.claim_buffers = \
            claim_cost(plain)
        daemons = Daemons(Path(tmp), url, fake, args.daemons, args.workers, args.interval,
                          args.lease_seconds)
        try:
            # idle: nothing due
            time.sleep(5)
            pids = backend_pids(plain)
            cpu0, db0 = daemons.cpu(), [cpu_seconds(p) for p in pids]
            statements = statements_reset(plain)
            x0, t0 = commits(plain), time.monotonic()
            time.sleep(args.idle_seconds)
            elapsed = time.monotonic() - t0
            cpu1, db1 = daemons.cpu(), [cpu_seconds(p) for p in pids]
            fig.idle_cpu_pct = 100 * statistics.mean(
                b - a for a, b in zip(cpu0, cpu1, strict=True)) / elapsed
            fig.idle_db_cpu_pct = 100 * sum(b - a for a, b in zip(db0, db1, strict=True)) / elapsed
            ticks = elapsed / 2.0 * args.daemons
            fig.xacts_per_tick = (commits(plain) - x0) / ticks
            if statements:
                fig.statements = top_statements(plain, ticks)
            # active: every connection due once per interval, offsets spread uniformly
            with psycopg.connect(plain) as conn:
                rows = conn.execute(
                    "UPDATE connections SET next_sync_at = now() + random() * %s * "
                    "interval '1 second' WHERE connector = 'loopback' "
                    "RETURNING id, extract(epoch FROM next_sync_at)", (args.interval,)).fetchall()
            due = {str(r[0]): float(r[1]) for r in rows}
            started = time.time()
            cpu_a = daemons.cpu()
            busy_pids = backend_pids(plain)
            db_a = {pid: cpu_seconds(pid) for pid in busy_pids}
            end = started + args.duration
            # half way, or early enough for the leases to expire within the phase
            kill_at = started + max(5.0, min(args.duration / 2,
                                             args.duration - args.lease_seconds - 20))
            killed_at: float | None = None
            held: set[str] = set()
            peak = 0
            while time.time() < end:
                time.sleep(1.0)
                with psycopg.connect(plain) as conn:
                    peak = max(peak, conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                        "current_database()").fetchone()[0] - 1)
                if args.kill and killed_at is None and time.time() > kill_at:
                    with psycopg.connect(plain) as conn:
                        held = {str(r[0]) for r in conn.execute(
                            "SELECT id FROM connections WHERE lease_owner = 'bench-0'")}
                    daemons.procs[0].send_signal(signal.SIGKILL)
                    killed_at = time.time()
            finished = time.time()
            # backends that lived through the phase (pools keep theirs), so an undercount
            fig.busy_db_cpu = sum(max(0.0, cpu_seconds(pid) - db_a[pid]) for pid in busy_pids
                                  if pid in set(backend_pids(plain)))
            fig.active_cpu_pct = 100 * statistics.mean(
                b - a for a, b in zip(cpu_a, daemons.cpu(), strict=True)) / (finished - started)
            fig.db_connections = peak
        finally:
            daemons.stop()
        with fake.lock:
            passes = {k: [list(p) for p in v] for k, v in fake.passes.items()}
            fig.max_per_minute = max(fake.max_per_minute.values(), default=0)
            fig.max_in_flight = max(fake.max_in_flight.values(), default=0)
        for cid in ids:
            mine = sorted(p for p in passes.get(cid, []) if p[0] >= started)
            fig.passes += len(mine)
            expected = due[cid]
            for begin, end_ in mine:
                if begin > finished:
                    break
                fig.lag.append(max(0.0, begin - expected))
                if begin - expected > args.interval:
                    fig.starved += 1
                expected = (end_ if end_ == end_ else begin) + args.interval
            if expected < finished:  # due, not started by the end: lag so far
                fig.lag.append(finished - expected)
                if finished - expected > args.interval:
                    fig.starved += 1
            done = [p for p in mine if p[1] == p[1]]
            fig.overlapping += sum(1 for a, b in zip(done, done[1:], strict=False) if b[0] < a[1])
            if killed_at is not None and cid in held:
                after = [p[0] for p in mine if p[0] > killed_at]
                fig.takeover.append((after[0] - killed_at) if after else float("inf"))
    return fig


def report(figures: list[Figures], args: argparse.Namespace) -> None:
    print(f"\nmachine: {os.cpu_count()} cores; per-request latency {args.latency * 1000:.0f} ms;"
          f" lease {args.lease_seconds} s; tick 2 s; active phase {args.duration:.0f} s")
    header = ("N", "D×workers", "interval s", "passes", "lag p50 s", "p99 s", "max s",
              "starved", "overlaps", "max req/min/acct", "max in flight/acct",
              "idle CPU/daemon", "idle DB CPU", "xacts/tick", "idle claim ms (buffers)",
              "claim ms (buffers)",
              "busy CPU/daemon", "daemon CPU ms/pass", "DB CPU ms/pass", "DB conns",
              "takeover s")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for f in figures:
        takeover = (f"{max(f.takeover):.1f} ({len(f.takeover)} held)" if f.takeover
                    else "none held")
        if f.takeover and max(f.takeover) == float("inf"):
            takeover = f"not within the phase ({len(f.takeover)} held)"
        print(" | ".join([
            f"{f.n:,}", f"{f.daemons}×{f.workers}", f"{f.interval:.0f}", f"{f.passes:,}",
            f"{pct(f.lag, 0.5):.1f}", f"{pct(f.lag, 0.99):.1f}", f"{max(f.lag, default=0):.1f}",
            str(f.starved), str(f.overlapping), str(f.max_per_minute), str(f.max_in_flight),
            f"{f.idle_cpu_pct:.1f}%", f"{f.idle_db_cpu_pct:.1f}%", f"{f.xacts_per_tick:.1f}",
            f"{f.idle_claim_ms:.2f} ({f.idle_claim_buffers})",
            f"{f.claim_ms:.2f} ({f.claim_buffers})", f"{f.active_cpu_pct:.1f}%",
            f"{f.active_cpu_pct / 100 * f.daemons * args.duration / max(f.passes, 1) * 1000:.0f}",
            f"{f.busy_db_cpu / max(f.passes, 1) * 1000:.1f}",
            str(f.db_connections), takeover]))
    for f in figures:
        if f.statements:
            print(f"\nN={f.n:,}: idle statements per daemon tick (pg_stat_statements)")
            print("\n".join(f.statements))
    print("\nlag: due -> pass began at the fake (passes still waiting at the end count with "
          "their lag so far); starved: a connection not started within its interval; "
          "overlaps: two completed passes of one connection overlapping (must be 0); idle "
          "CPU: per daemon process with nothing due; idle DB CPU: all their backends; "
          "xacts/tick: transactions committed per daemon per 2 s tick while idle; DB conns: "
          "peak sessions of all daemons; takeover: SIGKILL of one daemon -> the passes it "
          "held begin elsewhere")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="100,1000", type=lambda s: [int(x) for x in s.split(",")],
                        help="connection counts to run (default 100,1000)")
    parser.add_argument("--daemons", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4, help="daemon.workers of each daemon")
    parser.add_argument("--interval", type=float, default=60.0,
                        help="sync interval in seconds (production default 900)")
    parser.add_argument("--duration", type=float, default=None,
                        help="active phase seconds (default: interval + 30)")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--latency", type=float, default=0.15, help="seconds per request")
    parser.add_argument("--lease-seconds", type=int, default=60)
    parser.add_argument("--kill", action=argparse.BooleanOptionalAction, default=True,
                        help="SIGKILL one daemon half way through the active phase")
    parser.add_argument("--database-url", default=os.environ.get(
        "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    if args.duration is None:
        args.duration = args.interval + 30
    random.seed(1)
    figures = []
    for n in args.n:
        figures.append(measure(args, n))
        print(f"N={n:,} done", flush=True)
    report(figures, args)


if __name__ == "__main__":
    main()
