"""Benchmark: N QuickBooks and Jobber connections across many businesses, D `blippsync run`
daemons, one PostgreSQL.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1/test python bench/bench_scale.py
    python bench/bench_scale.py --n 10000 --daemons 4 --workers 4 --interval 900 --duration 1020

For each N, in a fresh database on TEST_DATABASE_URL's server (dropped afterwards):
- one loopback fake (ScaleFake) serving N/2 QuickBooks companies (Intuit's token endpoint
  and the query/CDC API, one realm id each) and N/2 Jobber accounts (rotating token
  endpoint, GraphQL with the documented cost bucket), a few customers each, with a
  per-request latency (default 150 ms); it counts, per company/account, the requests of
  the last 60 s and the requests in flight (the maximum of each), and the token refreshes;
- N businesses, each with one scheduled connection of the real `quickbooks` or `jobber`
  connector (--connectors; `loopback`, the test suite's connector, is also accepted),
  its tokens sealed in the vault as `blippsync connect` stores them (access tokens expiring
  over the next hour, so refreshes happen during the run), and, for every other one, a csv
  connection (never scheduled: a claim must not wade through them);
- D `blippsync run` processes (production tick/lease settings, the fake's URLs);
- idle phase: nothing due; daemon CPU, the database CPU of their backends and the
  transactions they commit per scheduler tick, and the claim statement's own cost;
- active phase: each connection due once per interval at a uniformly spread offset;
  from sync_runs (started_at/finished_at per connection, exact): the lag from due to the
  pass starting (p50/p99/max; passes still waiting at the end count with their lag so
  far), connections not started within their interval, overlapping passes of one
  connection (must be 0), failed passes; at the fake, per-company request budgets
  (QuickBooks: at most 500/min and 10 in flight per realm, across all daemons); database
  sessions used; and, with --kill, SIGKILL of one daemon half way: how long until the
  passes it held start elsewhere.
A summary table closes the run. Only loopback addresses are used.
"""

from __future__ import annotations

import argparse
import base64
import itertools
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import test_daemon_support as support  # noqa: E402
from fakes import intuit, jobber_fake, qbo_data  # noqa: E402
from fakes.faults import answer  # noqa: E402
from fakes.intuit import CLIENT_ID, CLIENT_SECRET  # noqa: E402
from fakes.jobber_fake import JobberFake  # noqa: E402
from fakes.qbo_kit import KEY_A  # noqa: E402

from blippsync.daemon.leases import CLAIM_SQL  # noqa: E402
from blippsync.runner import FILE_CONNECTORS  # noqa: E402
from blippsync.testing.database import fresh_database  # noqa: E402
from blippsync.vault.keys import keyring_from_strings  # noqa: E402
from blippsync.vault.store import sealed_at  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
ITEMS_PER_ACCOUNT = 3
TOKEN_SECONDS = 3600  # QuickBooks access tokens last an hour; the fake's Jobber ones too
REALM_BASE = 9130000000000000
QBO_PER_MINUTE, QBO_IN_FLIGHT = 500, 10  # Intuit's limits per company (realm)
CONNECTORS = ("quickbooks", "jobber", "loopback")
REFRESH_AHEAD_SECONDS = 600  # daemon.token_refresh_ahead_seconds (default)


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
    """One loopback server for every remote: QuickBooks companies (OAuth token endpoint,
    query/CDC API), Jobber accounts (rotating token endpoint, GraphQL with its cost
    bucket) and, with --connectors loopback, the test suite's loopback remote. Every API
    request waits `latency` and is counted against its company/account: requests in the
    last 60 s (max seen) and requests in flight (max seen). Token calls take the same
    latency and count against nothing, but are tallied (refreshes, refusals)."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.lock = threading.Lock()
        self.qbo: dict[str, SimpleNamespace] = {}      # realm -> SimpleNamespace(state=...)
        self.jobber: dict[int, JobberFake] = {}        # account number -> its fake
        self.loop_items: dict[str, list[dict[str, Any]]] = {}
        self.access: dict[str, tuple[str, float]] = {}  # access token -> (key, expires epoch)
        self.current_rt: dict[str, str] = {}            # key -> current refresh token
        self.previous_rt: dict[str, str] = {}           # key -> the one it replaced (QBO grace)
        self.rt_owner: dict[str, str] = {}              # refresh token -> key
        self.in_flight: dict[str, int] = defaultdict(int)
        self.max_in_flight: dict[str, int] = defaultdict(int)
        self.recent: dict[str, deque[float]] = defaultdict(deque)
        self.max_per_minute: dict[str, int] = defaultdict(int)
        self.requests = self.refreshes = self.refused_refreshes = self.unauthorized = 0
        self._issued = itertools.count(1)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def send(self, status: int, payload: Any, content_type: str = "application/json",
                     headers: dict[str, str] | None = None) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                answer(self, status, data, {"Content-Type": content_type, **(headers or {})})

            def do_GET(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                if url.path.startswith("/v3/company/"):
                    realm = url.path.split("/")[3]
                    return fake.counted(f"qbo:{realm}", self, lambda: fake.qbo_api(self, url))
                if url.path == "/changes":
                    q = {k: v[0] for k, v in parse_qs(url.query).items()}
                    return fake.counted(f"loop:{q['account']}", self,
                                        lambda: fake.loop_changes(self, q))
                self.send(404, {"error": "not found"})

            def do_POST(self) -> None:  # noqa: N802
                url = urlsplit(self.path)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if url.path == "/oauth2/v1/tokens/bearer":
                    time.sleep(fake.latency)
                    return fake.qbo_token(self, body)
                if url.path == "/api/oauth/token":
                    time.sleep(fake.latency)
                    return fake.jobber_token(self, body)
                if url.path == "/api/graphql":
                    key = fake.token_key(self) or "jobber:?"
                    return fake.counted(key, self, lambda: fake.jobber_api(self, key, body))
                if url.path in ("/begin", "/end", "/v2/oauth2/tokens/revoke"):
                    return self.send(200, {})
                self.send(404, {"error": "not found"})

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

    # --- accounts --------------------------------------------------------------------
    def add_quickbooks(self, realm: str, access: str, refresh: str, expires: float,
                       items: int, now: datetime) -> None:
        """A company with `items` customers (updated yesterday, so later passes use CDC as
        they would) and one paid invoice."""
        entities: dict[str, dict[str, dict[str, Any]]] = {"Customer": {}, "Invoice": {}}
        stamp = (now - timedelta(days=1)).isoformat(timespec="seconds")
        for i in range(1, items + 1):
            c = qbo_data.customer(i, 0)
            c["MetaData"] = {"CreateTime": stamp, "LastUpdatedTime": stamp}
            entities["Customer"][str(i)] = c
        inv = qbo_data.invoice(1, 0, total=120.0, balance=0.0, customer_id="1",
                               linked=(("Payment", "9001"),))
        inv["MetaData"] = {"CreateTime": stamp, "LastUpdatedTime": stamp}
        entities["Invoice"]["1"] = inv
        self.qbo[realm] = SimpleNamespace(state=SimpleNamespace(entities=entities,
                                                                cdc_deleted=[]))
        self._tokens(f"qbo:{realm}", access, refresh, expires)

    def add_jobber(self, number: int, access: str, refresh: str, expires: float, items: int,
                   now: datetime) -> None:
        """An account with `items` clients, one completed job and one paid invoice, and
        Jobber's documented cost bucket (10,000 points, 500/s)."""
        clients = [jobber_fake.make_client(i, now - timedelta(days=1, seconds=i))
                   for i in range(1, items + 1)]
        done = now - timedelta(hours=5)
        self.jobber[number] = JobberFake(
            clients=clients, jobs=[jobber_fake.make_job(1, clients[0], done)],
            invoices=[jobber_fake.make_invoice(1, clients[0], done)],
            client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
        self._tokens(f"jobber:{number}", access, refresh, expires)

    def add_loopback(self, account: str, items: int) -> None:
        at = "2026-01-01T12:00:00+00:00"
        self.loop_items[account] = [{"seq": n + 1, "account": account, "id": f"{account}-{n}",
                                     "name": f"Customer {account}-{n}",
                                     "email": f"{account}-{n}@loop.test", "at": at}
                                    for n in range(items)]

    def _tokens(self, key: str, access: str, refresh: str, expires: float) -> None:
        self.access[access] = (key, expires)
        self.current_rt[key] = refresh
        self.rt_owner[refresh] = key

    def _rotate(self, key: str, lifetime: float) -> tuple[str, str, float]:
        """A new pair for `key` (caller holds the lock): (access, refresh, expires epoch)."""
        n = next(self._issued)
        old = self.current_rt[key]
        self.previous_rt[key] = old
        refresh = f"rt-{key}-{n}-{secrets.token_hex(4)}"
        self.current_rt[key] = refresh
        self.rt_owner[refresh] = key
        expires = time.time() + lifetime
        if key.startswith("jobber:"):
            access = jobber_fake.make_jwt({
                "sub": n, "iss": "https://api.getjobber.com", "client_id": CLIENT_ID,
                "account_id": int(key.split(":")[1]), "exp": int(expires)})
        else:
            access = f"eyJhbGciOiJub25lIn0.{key}.{n}"
        self.access[access] = (key, expires)
        self.refreshes += 1
        return access, refresh, expires

    # --- counting --------------------------------------------------------------------
    def counted(self, key: str, handler: BaseHTTPRequestHandler, serve: Any) -> None:
        now = time.time()
        with self.lock:
            self.requests += 1
            self.in_flight[key] += 1
            self.max_in_flight[key] = max(self.max_in_flight[key], self.in_flight[key])
            window = self.recent[key]
            window.append(now)
            while window and window[0] < now - 60:
                window.popleft()
            self.max_per_minute[key] = max(self.max_per_minute[key], len(window))
        try:
            time.sleep(self.latency)
            serve()
        finally:
            with self.lock:
                self.in_flight[key] -= 1

    def token_key(self, handler: BaseHTTPRequestHandler) -> str | None:
        auth = handler.headers.get("Authorization", "")
        with self.lock:
            found = self.access.get(auth[7:]) if auth.startswith("Bearer ") else None
        return found[0] if found else None

    def authorized(self, handler: BaseHTTPRequestHandler, key: str) -> bool:
        auth = handler.headers.get("Authorization", "")
        with self.lock:
            found = self.access.get(auth[7:]) if auth.startswith("Bearer ") else None
            ok = found is not None and found[0] == key and found[1] > time.time()
            if not ok:
                self.unauthorized += 1
        return ok

    # --- QuickBooks --------------------------------------------------------------------
    def qbo_token(self, handler: Any, body: bytes) -> None:
        expected = "Basic " + base64.b64encode(
            f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if handler.headers.get("Authorization") != expected:
            return handler.send(401, {"error": "invalid_client"})
        form = dict(parse_qsl(body.decode()))
        token = form.get("refresh_token", "")
        with self.lock:
            key = self.rt_owner.get(token)
            if key is None or form.get("grant_type") != "refresh_token" or token not in (
                    self.current_rt.get(key), self.previous_rt.get(key)):
                self.refused_refreshes += 1
                return handler.send(400, {"error": "invalid_grant",
                                          "error_description": "Incorrect or invalid refresh "
                                                               "token"})
            access, refresh, _ = self._rotate(key, TOKEN_SECONDS)
        handler.send(200, {"token_type": "bearer", "access_token": access,
                           "expires_in": TOKEN_SECONDS, "refresh_token": refresh,
                           "x_refresh_token_expires_in": 8726400},
                     headers={"intuit_tid": "1-scale"})

    def qbo_api(self, handler: Any, url: Any) -> None:
        realm = url.path.split("/")[3]
        company = self.qbo.get(realm)
        if company is None or not self.authorized(handler, f"qbo:{realm}"):
            return handler.send(401, {"warnings": None, "fault": {"error": [{
                "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                "detail": "Token expired", "code": "3200", "element": None}],
                "type": "AUTHENTICATION"}, "time": 1633520295688},
                headers={"intuit_tid": "1-scale"})
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        what = url.path.split("/")[4]
        if what == "query":
            payload = intuit._Handler._query(company, unquote(params["query"]))  # type: ignore[arg-type]
        elif what == "cdc":
            payload = intuit._Handler._cdc(  # type: ignore[arg-type]
                company, params["entities"].split(","), intuit.parse_ts(params["changedSince"]))
        else:
            entity = what.capitalize() if what != "creditmemo" else "CreditMemo"
            obj = company.state.entities.get(entity, {}).get(url.path.split("/")[5])
            if obj is None:
                return handler.send(400, {"Fault": {"Error": [{
                    "Message": "Object Not Found", "code": "610"}], "type": "ValidationFault"}})
            payload = {entity: obj, "time": "2026-11-20T04:15:11.919-08:00"}
        handler.send(200, payload, "application/json;charset=UTF-8",
                     headers={"intuit_tid": "1-scale"})

    # --- Jobber ------------------------------------------------------------------------
    def jobber_token(self, handler: Any, body: bytes) -> None:
        form = dict(parse_qsl(body.decode()))
        if (form.get("client_id"), form.get("client_secret")) != (CLIENT_ID,
                                                                  CLIENT_SECRET):
            return handler.send(401, {"error": "invalid_client"})
        token = form.get("refresh_token", "")
        with self.lock:
            key = self.rt_owner.get(token)
            if key is None or form.get("grant_type") != "refresh_token" or \
                    token != self.current_rt.get(key):  # Jobber: no grace for a used one
                self.refused_refreshes += 1
                return handler.send(401, {"error": "invalid_grant", "error_description":
                                          "The provided refresh token is not valid."})
            access, refresh, expires = self._rotate(key, TOKEN_SECONDS)
        when = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        handler.send(200, {"access_token": access, "refresh_token": refresh,
                           "expires_at": when})

    def jobber_api(self, handler: Any, key: str, body: bytes) -> None:
        account = self.jobber.get(int(key.split(":")[1])) if key != "jobber:?" else None
        if account is None or not self.authorized(handler, key):
            return handler.send(401, b"Access token expired", "text/plain; charset=utf-8")
        request = json.loads(body)
        handler.send(200, account.graphql(request["query"], request.get("variables") or {}))

    # --- loopback ----------------------------------------------------------------------
    def loop_changes(self, handler: Any, q: dict[str, str]) -> None:
        after, limit = int(q["after"]), int(q["limit"])
        found = [i for i in self.loop_items.get(q["account"], ()) if i["seq"] > after]
        handler.send(200, found[:limit])


@dataclass
class Figures:
    n: int
    daemons: int
    workers: int
    interval: float
    connectors: str = ""
    setup_seconds: float = 0.0
    passes: int = 0
    failed: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    not_connected: int = 0            # connections marked token_expired/disconnected
    customers: int = 0                # stored in the end (N × ITEMS_PER_ACCOUNT when all ran)
    events: int = 0
    lag: list[float] = field(default_factory=list)
    pass_seconds: list[float] = field(default_factory=list)
    starved: int = 0
    overlapping: int = 0
    budgets: dict[str, tuple[int, int]] = field(default_factory=dict)  # kind -> max/min, in flight
    requests: int = 0
    refreshes: int = 0
    refused_refreshes: int = 0
    unauthorized: int = 0
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


@dataclass
class Fleet:
    """What setup made: connection id -> (connector, fake key); the time it took."""

    kinds: dict[str, tuple[str, str]] = field(default_factory=dict)
    seconds: float = 0.0
    refreshes_expected: int = 0


def setup(url: str, n: int, connectors: list[str], fake: ScaleFake, token_base: float,
          token_spread: float) -> Fleet:
    """N businesses, connection i of connector connectors[i % k] (not due yet), tokens
    sealed in the vault as `blippsync connect` stores them, a csv connection beside every
    other business. Batched: one INSERT for the businesses, COPY for the rest; tokens
    sealed in this process. Access tokens expire at token_base + uniform(0, token_spread)
    (epoch seconds), so the daemons' token sweep and the connectors refresh some during
    the active phase."""
    started = time.perf_counter()
    fleet = Fleet()
    ring = keyring_from_strings([KEY_A], "bench")
    now = datetime.now(UTC)
    rng = random.Random(n)
    with psycopg.connect(url) as conn:
        conn.execute("INSERT INTO customer_sources (name) SELECT unnest(%s::text[]) "
                     "ON CONFLICT DO NOTHING", (connectors,))
        businesses = conn.execute("""
            INSERT INTO businesses (name, created_by)
            SELECT 'Biz ' || g, 'owner' || g || '@scale.test' FROM generate_series(1, %s) g
            RETURNING id, created_by""", (n,)).fetchall()
        rows: list[tuple[Any, ...]] = []
        sealed: dict[str, list[tuple[Any, ...]]] = {"quickbooks": [], "jobber": []}
        later = now + timedelta(days=1)
        for business_id, created_by in businesses:
            i = int(created_by[5:created_by.index("@")])
            kind = connectors[i % len(connectors)]
            expires = token_base + rng.uniform(0, token_spread)
            expires_at = datetime.fromtimestamp(expires, UTC)
            if kind == "loopback":
                account = f"acct-{i}"
                fake.add_loopback(account, ITEMS_PER_ACCOUNT)
                rows.append((business_id, kind, account, later, None))
                fleet.kinds[account] = (kind, f"loop:{account}")  # keyed by account for now
                continue
            refresh = f"rt-initial-{i}-{secrets.token_hex(4)}"
            if kind == "quickbooks":
                account = str(REALM_BASE + i)
                access = f"eyJhbGciOiJub25lIn0.initial.{i}"
                fake.add_quickbooks(account, access, refresh, expires, ITEMS_PER_ACCOUNT, now)
                key = f"qbo:{account}"
            else:
                account = jobber_fake.encoded_id("Account", i)
                access = jobber_fake.make_jwt({
                    "sub": i, "iss": "https://api.getjobber.com", "client_id": CLIENT_ID,
                    "account_id": i, "exp": int(expires)})
                fake.add_jobber(i, access, refresh, expires, ITEMS_PER_ACCOUNT, now)
                key = f"jobber:{i}"
            table = f"integrations_{kind}"

            def seal(column: str, value: str, table: str = table,
                     business_id: Any = business_id) -> str:
                return ring.encrypt(value, sealed_at(table, column, business_id, business_id))

            sealed[kind].append((business_id, account, seal("access_token", access),
                                 seal("refresh_token", refresh), expires_at))
            rows.append((business_id, kind, account, later, expires_at))
            fleet.kinds[account] = (kind, key)
        with conn.cursor() as cur:
            with cur.copy("COPY connections (business_id, connector, account_id, next_sync_at, "
                          "token_expires_at) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            for kind, column in (("quickbooks", "realm_id"), ("jobber", "account_id")):
                if sealed[kind]:
                    with cur.copy(f"COPY integrations_{kind} (business_id, {column}, "
                                  "access_token, refresh_token, token_expires_at) "
                                  "FROM STDIN") as copy:
                        for row in sealed[kind]:
                            copy.write_row(row)
        conn.execute("""
            INSERT INTO connections (business_id, connector, next_sync_at)
            SELECT id, 'csv', now() - interval '30 days' FROM businesses
            WHERE substr(created_by, 6, strpos(created_by, '@') - 6)::int % 2 = 0""")
        by_account = fleet.kinds
        fleet.kinds = {str(cid): by_account[account] for cid, account in conn.execute(
            "SELECT id, account_id FROM connections WHERE connector = ANY(%s)", (connectors,))}
        # steady state: the daily tasks ran recently (a first start would make every
        # webhook-driven connection due at once: the reconciliation, see docs/scaling.md)
        conn.execute("INSERT INTO blippsync.daemon_tasks (name, last_finished_at) "
                     "VALUES ('reconcile', now()), ('retention', now())")
        conn.execute("ANALYZE")
    fleet.seconds = time.perf_counter() - started
    return fleet


def daemon_config(path: Path, url: str, fake_url: str, *, port: int, workers: int = 4,
                  **daemon: Any) -> Path:
    """A daemon's config.toml: the connectors pointed at the fake, the vault's key,
    production tick and lease settings unless given."""
    extra = "\n".join([
        "[encryption]", f'keys = ["{KEY_A}"]',
        "[quickbooks]", f'client_id = "{CLIENT_ID}"', f'client_secret = "{CLIENT_SECRET}"',
        f'api_base_url = "{fake_url}"', f'token_url = "{fake_url}/oauth2/v1/tokens/bearer"',
        f'revoke_url = "{fake_url}/v2/oauth2/tokens/revoke"',
        "[jobber]", f'client_id = "{CLIENT_ID}"', f'client_secret = "{CLIENT_SECRET}"',
        f'graphql_url = "{fake_url}/api/graphql"', f'token_url = "{fake_url}/api/oauth/token"'])
    settings = {"tick_seconds": 2.0, "journey_interval_seconds": 5.0,
                "shutdown_grace_seconds": 10.0, "retry_seconds": 60, **daemon}
    config = support.write_config(path, url, fake_url, port=port, extra=extra,
                                  workers=workers, **settings)
    text = config.read_text().replace('level = "INFO"', 'level = "WARNING"')
    config.write_text(text.replace("pool_size = 4", f"pool_size = {workers + 2}"))
    return config


class Daemons:
    """D daemon processes: `blippsync run` (the loopback connector, a test plugin, needs
    the test suite's launcher, which runs the same Daemon)."""

    def __init__(self, tmp: Path, url: str, fake: ScaleFake, count: int, workers: int,
                 interval: float, lease_seconds: int, connectors: list[str]) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLIPPSYNC_")}
        env["PYTHONPATH"] = f"{ROOT}{os.pathsep}{env.get('PYTHONPATH', '')}"
        for d in range(count):
            port = support.free_port()
            config = daemon_config(tmp / f"d{d}.toml", url, fake.url, port=port,
                                   id=f"bench-{d}", workers=workers,
                                   sync_interval_seconds=int(interval),
                                   lease_seconds=lease_seconds)
            command = ([str(ROOT / "tests" / "test_daemon_support.py"), str(config)]
                       if "loopback" in connectors else
                       ["-m", "blippsync", "--config", str(config), "run"])
            log = (tmp / f"d{d}.log").open("wb")
            self.procs.append(subprocess.Popen([sys.executable, *command],
                                               stdout=subprocess.DEVNULL, stderr=log, env=env,
                                               cwd=tmp))
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


def claim_cost(url: str, connectors: list[str]) -> tuple[float, int, float, int]:
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
                                 "WHERE connector = ANY(%s) LIMIT 8)", (connectors,))
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


Run = tuple[float, float | None, str]  # started, finished (None: never), status


def sync_runs(url: str, since: float) -> tuple[dict[str, list[Run]], Counter[str]]:
    """Every pass since `since` per connection, from the database (exact), oldest first;
    and the errors of the failed ones."""
    runs: dict[str, list[Run]] = defaultdict(list)
    errors: Counter[str] = Counter()
    with psycopg.connect(url) as conn:
        for cid, begin, end, status, error in conn.execute("""
                SELECT connection_id::text, extract(epoch FROM started_at)::float8,
                       extract(epoch FROM finished_at)::float8, status, error
                FROM sync_runs WHERE started_at >= to_timestamp(%s)
                ORDER BY started_at""", (since,)):
            runs[cid].append((begin, end, status))
            if status == "failed":
                errors[(error or "?")[:160]] += 1
    return runs, errors


def analyse(fig: Figures, runs: dict[str, list[Run]], due: dict[str, float],
            interval: float, finished: float, killed_at: float | None,
            held: set[str]) -> None:
    """Lag, starvation, overlaps and takeover from the passes of each connection. A pass
    that never finished was cut short by the SIGKILL: it ends at the kill."""
    for cid, first_due in due.items():
        mine = runs.get(cid, [])
        fig.passes += len(mine)
        fig.failed += sum(1 for r in mine if r[2] == "failed")
        expected = first_due
        fig.pass_seconds += [end - begin for begin, end, _ in mine if end is not None]
        for begin, end, _status in mine:
            if begin > finished:
                break
            fig.lag.append(max(0.0, begin - expected))
            if begin - expected > interval:
                fig.starved += 1
            if end is not None:
                expected = end + interval
            elif killed_at is not None and begin < killed_at:
                expected = killed_at  # due again at once: the lease must expire first
            else:
                expected = float("inf")  # still running when the daemons stopped
        if expected < finished:  # due, not started by the end: lag so far
            fig.lag.append(finished - expected)
            if finished - expected > interval:
                fig.starved += 1
        for (a_begin, a_end, _), (b_begin, _, _) in zip(mine, mine[1:], strict=False):
            if a_end is None:
                a_end = killed_at if killed_at is not None and a_begin < killed_at \
                    else float("inf")
            if b_begin < a_end:
                fig.overlapping += 1
        if killed_at is not None and cid in held:
            after = [r[0] for r in mine if r[0] > killed_at]
            fig.takeover.append((after[0] - killed_at) if after else float("inf"))


def measure(args: argparse.Namespace, n: int) -> Figures:
    fig = Figures(n, args.daemons, args.workers, args.interval, ",".join(args.connectors))
    with tempfile.TemporaryDirectory() as tmp, ScaleFake(args.latency) as fake, \
            fresh_database(args.database_url) as url:
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        # tokens enter the daemons' refresh horizon once the active phase has begun
        token_base = time.time() + REFRESH_AHEAD_SECONDS + args.idle_seconds + 15
        fleet = setup(plain, n, args.connectors, fake, token_base, args.token_spread)
        fig.setup_seconds = fleet.seconds
        print(f"N={n:,}: setup {fleet.seconds:.1f} s", flush=True)
        fig.idle_claim_ms, fig.idle_claim_buffers, fig.claim_ms, fig.claim_buffers = \
            claim_cost(plain, args.connectors)
        daemons = Daemons(Path(tmp), url, fake, args.daemons, args.workers, args.interval,
                          args.lease_seconds, args.connectors)
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
                    "interval '1 second' WHERE connector = ANY(%s) "
                    "RETURNING id, extract(epoch FROM next_sync_at)",
                    (args.interval, args.connectors)).fetchall()
            due = {str(r[0]): float(r[1]) for r in rows}
            started = time.time()
            cpu_a = daemons.cpu()
            busy_pids = backend_pids(plain)
            db_a = {pid: cpu_seconds(pid) for pid in busy_pids}
            db_seen = dict(db_a)
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
                    sessions = [r[0] for r in conn.execute(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()")]
                peak = max(peak, len(sessions))
                for pid in sessions:  # pools open and close sessions: sample them all
                    db_seen[pid] = cpu_seconds(pid) or db_seen.get(pid, 0.0)
                if args.kill and killed_at is None and time.time() > kill_at:
                    daemons.procs[0].send_signal(signal.SIGKILL)
                    killed_at = time.time()
                    daemons.procs[0].wait()
                    with psycopg.connect(plain) as conn:  # what it can no longer give back
                        held = {str(r[0]) for r in conn.execute(
                            "SELECT id FROM connections WHERE lease_owner = 'bench-0'")}
            finished = time.time()
            for pid in backend_pids(plain):
                db_seen[pid] = cpu_seconds(pid) or db_seen.get(pid, 0.0)
            # every backend seen once a second (one living less than that is missed): a
            # slight undercount
            fig.busy_db_cpu = sum(max(0.0, cpu - db_a.get(pid, 0.0))
                                  for pid, cpu in db_seen.items())
            fig.active_cpu_pct = 100 * statistics.mean(
                b - a for a, b in zip(cpu_a, daemons.cpu(), strict=True)) / (finished - started)
            fig.db_connections = peak
        finally:
            daemons.stop()
        runs, fig.errors = sync_runs(plain, started - 1)
        analyse(fig, runs, due, args.interval, finished, killed_at, held)
        with psycopg.connect(plain) as conn:
            fig.not_connected = conn.execute(
                "SELECT count(*) FROM connections WHERE connector = ANY(%s) "
                "AND status <> 'connected'", (args.connectors,)).fetchone()[0]
            fig.customers = conn.execute("SELECT count(*) FROM customers").fetchone()[0]
            fig.events = conn.execute("SELECT count(*) FROM trigger_events").fetchone()[0]
        with fake.lock:
            for prefix in ("qbo", "jobber", "loop"):
                keys = [k for k in fake.max_per_minute if k.startswith(prefix + ":")]
                if keys:
                    fig.budgets[prefix] = (max(fake.max_per_minute[k] for k in keys),
                                           max(fake.max_in_flight[k] for k in keys))
            fig.requests, fig.refreshes = fake.requests, fake.refreshes
            fig.refused_refreshes, fig.unauthorized = fake.refused_refreshes, fake.unauthorized
    return fig


def report(figures: list[Figures], args: argparse.Namespace) -> None:
    print(f"\nmachine: {os.cpu_count()} cores; per-request latency {args.latency * 1000:.0f} ms;"
          f" lease {args.lease_seconds} s; tick 2 s; active phase {args.duration:.0f} s; "
          f"{ITEMS_PER_ACCOUNT} customers per company/account")
    header = ("N", "connectors", "D×workers", "interval s", "setup s", "passes", "failed",
              "lag p50 s", "p99 s", "max s", "starved", "overlaps", "pass s p50 (p99)",
              f"QBO max req/min/company (limit {QBO_PER_MINUTE})",
              f"QBO max in flight/company (limit {QBO_IN_FLIGHT})",
              "Jobber max req/min/account", "Jobber max in flight/account",
              "API requests", "customers (events) stored",
              "token refreshes (refused)", "401s", "not connected",
              "idle CPU/daemon", "idle DB CPU", "xacts/tick", "idle claim ms (buffers)",
              "claim ms (buffers)", "busy CPU/daemon", "daemon CPU ms/pass", "DB CPU ms/pass",
              "DB conns", "takeover s")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for f in figures:
        takeover = (f"{max(f.takeover):.1f} ({len(f.takeover)} held)" if f.takeover
                    else "none held")
        if f.takeover and max(f.takeover) == float("inf"):
            takeover = f"not within the phase ({len(f.takeover)} held)"
        qbo, jobber = f.budgets.get("qbo", (0, 0)), f.budgets.get("jobber", (0, 0))
        print(" | ".join([
            f"{f.n:,}", f.connectors, f"{f.daemons}×{f.workers}", f"{f.interval:.0f}",
            f"{f.setup_seconds:.1f}", f"{f.passes:,}", str(f.failed),
            f"{pct(f.lag, 0.5):.1f}", f"{pct(f.lag, 0.99):.1f}", f"{max(f.lag, default=0):.1f}",
            str(f.starved), str(f.overlapping),
            f"{pct(f.pass_seconds, 0.5):.2f} ({pct(f.pass_seconds, 0.99):.2f})",
            str(qbo[0]), str(qbo[1]), str(jobber[0]),
            str(jobber[1]), f"{f.requests:,}", f"{f.customers:,} ({f.events:,})",
            f"{f.refreshes} ({f.refused_refreshes})",
            str(f.unauthorized), str(f.not_connected),
            f"{f.idle_cpu_pct:.1f}%", f"{f.idle_db_cpu_pct:.1f}%", f"{f.xacts_per_tick:.1f}",
            f"{f.idle_claim_ms:.2f} ({f.idle_claim_buffers})",
            f"{f.claim_ms:.2f} ({f.claim_buffers})", f"{f.active_cpu_pct:.1f}%",
            f"{f.active_cpu_pct / 100 * f.daemons * args.duration / max(f.passes, 1) * 1000:.0f}",
            f"{f.busy_db_cpu / max(f.passes, 1) * 1000:.1f}",
            str(f.db_connections), takeover]))
    for f in figures:
        if f.errors:
            print(f"\nN={f.n:,}: failed passes by error")
            for error, count in f.errors.most_common(5):
                print(f"{count:6d}  {error}")
        if f.statements:
            print(f"\nN={f.n:,}: idle statements per daemon tick (pg_stat_statements)")
            print("\n".join(f.statements))
    print("\nfrom sync_runs: lag: due -> pass started (passes still waiting at the end count "
          "with their lag so far); starved: a connection not started within its interval; "
          "overlaps: two passes of one connection overlapping (must be 0; a pass cut by the "
          "SIGKILL ends at the kill); failed: passes that ended in error. At the fake: max "
          "requests in any 60 s and in flight for the busiest company/account, all daemons "
          "together; token refreshes answered (and refused: must be 0); 401s: API calls with "
          "an expired or unknown token (each is followed by a refresh). not connected: "
          "connections marked token_expired/disconnected at the end (must be 0). idle CPU: "
          "per daemon process with nothing due; idle DB CPU: all their backends; xacts/tick: "
          "transactions committed per daemon per 2 s tick while idle; DB conns: peak sessions "
          "of all daemons; takeover: SIGKILL of one daemon -> the passes it held begin "
          "elsewhere")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="100,1000", type=lambda s: [int(x) for x in s.split(",")],
                        help="connection counts to run (default 100,1000)")
    parser.add_argument("--connectors", default="quickbooks,jobber",
                        type=lambda s: [x.strip() for x in s.split(",") if x.strip()],
                        help="connectors of the connections, in equal shares: quickbooks, "
                             "jobber, loopback (default quickbooks,jobber)")
    parser.add_argument("--daemons", type=int, default=4)
    parser.add_argument("--workers", type=int, default=4, help="daemon.workers of each daemon")
    parser.add_argument("--interval", type=float, default=60.0,
                        help="sync interval in seconds (production default 900)")
    parser.add_argument("--duration", type=float, default=None,
                        help="active phase seconds (default: interval + 30)")
    parser.add_argument("--idle-seconds", type=float, default=20.0)
    parser.add_argument("--latency", type=float, default=0.15, help="seconds per request")
    parser.add_argument("--lease-seconds", type=int, default=60)
    parser.add_argument("--token-spread", type=float, default=float(TOKEN_SECONDS),
                        help="access tokens expire uniformly over this many seconds, from when "
                             "the active phase begins (+ the 600 s refresh horizon)")
    parser.add_argument("--kill", action=argparse.BooleanOptionalAction, default=True,
                        help="SIGKILL one daemon half way through the active phase")
    parser.add_argument("--database-url", default=os.environ.get(
        "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    unknown = set(args.connectors) - set(CONNECTORS)
    if unknown or not args.connectors:
        parser.error(f"--connectors: choose from {', '.join(CONNECTORS)}")
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
