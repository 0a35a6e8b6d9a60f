"""A loopback Jobber: GraphQL with a leaky cost bucket, and a rotating token endpoint.

Just enough of the real API for the connector's tests and benchmark: `account`,
`clients`/`jobs`/`invoices` connections with the filters the connector uses, `client`,
`job`, `invoice`, `visit` by id, and `appDisconnect`. Costs are charged as Jobber
documents them (`fakes.jobber_cost`, written from the docs, not the connector's estimate):
a query is refused with THROTTLED (HTTP 200) when it
requests more than the bucket holds, and the bucket is charged the actual cost, which
refills at `restore_rate` points per second up to `maximum`.

The token endpoint rotates the refresh token on every refresh and rejects a reused one;
after a reuse the whole grant is dead (a lockout), which is what the rotation race test
must never see. Access tokens are JWTs with an `exp` claim; unknown ones get a
`text/plain` 401, as Jobber sends.

`faults` (a FaultPlan) makes GraphQL calls misbehave as Jobber's do: 429 from the request
limiter, 5xx outages, INTERNAL_SERVER_ERROR inside a 200, slow answers, dropped
connections; `token_faults` does the same to the token endpoint (a dropped answer there
comes after the rotation: the lost-response case).
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

import httpx

from blippsync.connector import ConnectorContext
from connectors.jobber.mapping import parse_time
from fakes.faults import FaultAnswers, FaultPlan, QuietServer, answer, misbehave
from fakes.jobber_cost import requested_cost, root_field

ACCOUNT_ID = "Z2lkOi8vSm9iYmVyL0FjY291bnQvMjQ4NjkzNA=="
API_VERSION = "2025-04-16"
BASE_TIME = datetime(2025, 6, 1, tzinfo=UTC)
_JSON = {"Content-Type": "application/json"}
ANSWERS = FaultAnswers(
    throttle=(429, _JSON, b'{"message":"Too Many Requests"}'),
    unavailable=((500, _JSON, b'{"message":"Service temporarily unavailable"}'),
                 (503, _JSON, b'{"message":"Service temporarily unavailable"}')),
    fault_in_200=(200, _JSON, json.dumps({"errors": [{
        "message": "Internal server error", "extensions": {"code": "INTERNAL_SERVER_ERROR"}}],
        "data": None}).encode()))


def encoded_id(kind: str, number: int) -> str:
    return base64.b64encode(f"gid://Jobber/{kind}/{number}".encode()).decode()


def make_client(n: int, updated: datetime | None = None) -> dict[str, Any]:
    return {"id": encoded_id("Client", n), "name": f"Client {n}", "companyName": None,
            "isArchived": n % 50 == 0, "updatedAt": (updated or BASE_TIME + timedelta(
                seconds=n)).isoformat().replace("+00:00", "Z"),
            "receivesReviewRequests": n % 10 != 0,
            "emails": [{"address": f"client{n}@example.com", "primary": True}],
            "phones": [{"number": f"(415) 555-{n % 10000:04d}", "primary": True,
                        "smsAllowed": n % 3 != 0, "description": "Main"}],
            "billingAddress": {"street1": f"{n} Main St", "street2": None, "city": "Springfield",
                               "province": "IL", "postalCode": "62701", "country": "US"}}


def make_job(n: int, client: dict[str, Any], completed: datetime | None) -> dict[str, Any]:
    return {"id": encoded_id("Job", n), "jobNumber": n, "title": f"Job {n}",
            "jobStatus": "requires_invoicing" if completed else "active",
            "completedAt": completed.isoformat().replace("+00:00", "Z") if completed else None,
            "client": client}


def make_invoice(n: int, client: dict[str, Any], paid: datetime | None) -> dict[str, Any]:
    when = paid or BASE_TIME
    return {"id": encoded_id("Invoice", n), "invoiceNumber": str(1000 + n),
            "invoiceStatus": "paid" if paid else "awaiting_payment",
            "receivedDate": paid.isoformat().replace("+00:00", "Z") if paid else None,
            "updatedAt": when.isoformat().replace("+00:00", "Z"),
            "amounts": {"total": 125.5}, "client": client}


def make_jwt(claims: dict[str, Any]) -> str:
    def part(obj: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'HS256'})}.{part(claims)}.{secrets.token_urlsafe(16)}"


class JobberFake:
    def __init__(self, clients: list[dict[str, Any]] | None = None,
                 jobs: list[dict[str, Any]] | None = None,
                 invoices: list[dict[str, Any]] | None = None, visits: dict[str, Any] | None = None,
                 maximum: float = 10_000, restore_rate: float = 500, bucket: bool = True,
                 client_id: str = "fake-client-id", client_secret: str = "fake-client-secret",
                 access_lifetime_seconds: int = 3600, versioning_warning: str | None = None,
                 faults: FaultPlan | None = None, token_faults: FaultPlan | None = None):
        self.clients, self.jobs, self.invoices = clients or [], jobs or [], invoices or []
        self.visits = visits or {}
        self.maximum, self.restore_rate, self.bucket = maximum, restore_rate, bucket
        self.level, self.level_at = maximum, time.monotonic()
        self.client_id, self.client_secret = client_id, client_secret
        self.access_lifetime_seconds = access_lifetime_seconds
        self.versioning_warning = versioning_warning
        self.lock = threading.Lock()
        self.requests = self.throttled = self.refreshes = self.reuse_rejections = 0
        self.spent = 0.0
        self.queries: list[tuple[str, dict[str, Any]]] = []
        self.headers_seen: list[dict[str, str]] = []
        self.access_tokens: set[str] = set()
        self.refresh_token = secrets.token_hex(16)
        self.locked_out = False
        self.disconnected = False
        self.pending_statuses: list[int] = []  # answer the next requests with these (429...)
        self.faults, self.token_faults = faults, token_faults
        self._server: ThreadingHTTPServer | None = None
        self._filtered: dict[tuple[str, str, int], list[dict[str, Any]]] = {}

    # --- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> JobberFake:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = QuietServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def graphql_url(self) -> str:
        return self.base_url + "/api/graphql"

    @property
    def token_url(self) -> str:
        return self.base_url + "/api/oauth/token"

    def issue_access_token(self) -> str:
        exp = int(time.time()) + self.access_lifetime_seconds
        token = make_jwt({"sub": 1077988, "iss": "https://api.getjobber.com",
                          "client_id": self.client_id, "account_id": 2486934, "exp": exp})
        self.access_tokens.add(token)
        return token

    def settings(self, **extra: Any) -> dict[str, Any]:
        return {"client_id": self.client_id, "client_secret": self.client_secret,
                "graphql_url": self.graphql_url, "token_url": self.token_url, **extra}

    # --- the bucket ----------------------------------------------------------------------
    def _charge(self, requested: float) -> tuple[bool, float]:
        """(allowed, level now); the caller charges the actual cost with `_spend`."""
        now = time.monotonic()
        self.level = min(self.maximum, self.level + self.restore_rate * (now - self.level_at))
        self.level_at = now
        return (not self.bucket or requested <= self.level), self.level

    def _spend(self, actual: float) -> None:
        if self.bucket:
            self.level -= actual
        self.spent += actual

    def cost_block(self, requested: float, actual: float) -> dict[str, Any]:
        return {"requestedQueryCost": int(requested), "actualQueryCost": int(actual),
                "throttleStatus": {"maximumAvailable": int(self.maximum),
                                   "currentlyAvailable": int(self.level),
                                   "restoreRate": int(self.restore_rate)}}

    # --- GraphQL -------------------------------------------------------------------------
    def graphql(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        requested = requested_cost(query, variables)
        with self.lock:
            self.requests += 1
            self.queries.append((query, variables))
            allowed, _ = self._charge(requested)
            if not allowed:
                self.throttled += 1
                return {"errors": [{"message": "Throttled", "extensions": {
                    "code": "THROTTLED", "documentation":
                        "https://developer.getjobber.com/docs/using_jobbers_api/api_rate_limits"}}],
                        "extensions": {"cost": self.cost_block(requested, 0),
                                       "versioning": {"version": API_VERSION}}}
            data, returned = self._resolve(query, variables)
            actual = requested if returned is None else requested_cost(
                query, {**variables, "first": returned})
            self._spend(actual)
            versioning: dict[str, Any] = {"version": API_VERSION}
            if self.versioning_warning:
                versioning["warning"] = self.versioning_warning
            return {"data": data, "extensions": {"cost": self.cost_block(requested, actual),
                                                 "versioning": versioning}}

    def _resolve(self, query: str, variables: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
        root = root_field(query)
        if root == "account":
            return {"account": {"id": ACCOUNT_ID, "name": "Fake Lawn Care"}}, None
        if root == "appDisconnect":
            self.disconnected = True
            return {"appDisconnect": {"app": {"name": "Blipp", "author": "Blipp"},
                                      "userErrors": []}}, None
        if root in ("client", "job", "invoice", "visit"):
            pool = {"client": self.clients, "job": self.jobs, "invoice": self.invoices}
            if root == "visit":
                return {"visit": self.visits.get(variables.get("id"))}, None
            node = next((n for n in pool[root] if n["id"] == variables.get("id")), None)
            return {root: node}, None
        items = {"clients": self.clients, "jobs": self.jobs, "invoices": self.invoices}[root]
        flt = variables.get("filter") or {}
        key = (root, json.dumps(flt, sort_keys=True), len(items))
        chosen = self._filtered.get(key)
        if chosen is None:  # computed once per filter: paging through it stays cheap
            chosen = [n for n in items if _matches(root, n, flt)] if flt else items
            self._filtered = {key: chosen}
        offset = int(_unb64(variables["after"])) if variables.get("after") else 0
        first = int(variables.get("first") or 100)
        page = chosen[offset:offset + first]
        end = offset + len(page)
        return {root: {"nodes": page, "pageInfo": {
            "endCursor": _b64(str(end)) if page else None,
            "hasNextPage": end < len(chosen)}}}, len(page)

    # --- OAuth ---------------------------------------------------------------------------
    def token(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            if form.get("client_id") != self.client_id or \
                    form.get("client_secret") != self.client_secret:
                return 401, {"error": "invalid_client"}
            grant = form.get("grant_type")
            if grant == "authorization_code" and form.get("code"):
                self.refresh_token = secrets.token_hex(16)
                return 200, {"access_token": self.issue_access_token(),
                             "refresh_token": self.refresh_token}
            if grant != "refresh_token":
                return 400, {"error": "unsupported_grant_type"}
            if self.locked_out or form.get("refresh_token") != self.refresh_token:
                self.reuse_rejections += 1
                self.locked_out = True
                return 401, {"error": "invalid_grant",
                             "error_description": "The provided refresh token is not valid."}
            self.refreshes += 1
            self.refresh_token = secrets.token_hex(16)
            access = self.issue_access_token()
            expires = datetime.now(UTC) + timedelta(seconds=self.access_lifetime_seconds)
            return 200, {"access_token": access, "refresh_token": self.refresh_token,
                         "expires_at": expires.strftime("%Y-%m-%d %H:%M:%S UTC")}


class FakeTokens:
    """A TokenProvider handing out the fake's tokens (the vault's job in production)."""

    def __init__(self, fake: JobberFake, token: str | None = None) -> None:
        self.fake, self.refreshes = fake, 0
        self.token = token if token is not None else fake.issue_access_token()

    def access_token(self) -> str:
        return self.token

    def refresh_after_rejection(self, rejected_token: str) -> str:
        self.refreshes += 1
        self.token = self.fake.issue_access_token()
        return self.token


def make_ctx(fake: JobberFake, http: httpx.Client, cursor: Any = None, tokens: Any = None,
             account_id: str = ACCOUNT_ID, now: datetime | None = None,
             waits: list[float] | None = None, **settings: Any) -> ConnectorContext:
    """`waits` collects the throttle waits the connector reports."""
    return ConnectorContext(business_id=uuid.uuid4(), connection_id=None, account_id=account_id,
                            settings=fake.settings(**settings), cursor=cursor, http=http,
                            log=logging.getLogger("test.jobber"),
                            tokens=tokens or FakeTokens(fake), now=now,
                            on_throttle_wait=(waits.append if waits is not None
                                              else lambda seconds: None))


class _Handler(BaseHTTPRequestHandler):
    owner: JobberFake
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms stalls

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        fake = self.owner
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/api/oauth/token":
            fault = fake.token_faults.choose() if fake.token_faults else None
            if fault not in (None, "drop", "slow") and misbehave(
                    self, fault, fake.token_faults, ANSWERS):
                return
            status, payload = fake.token(dict(parse_qsl(body.decode())))
            if fault in ("drop", "slow") and misbehave(
                    self, fault, fake.token_faults, ANSWERS):
                return  # rotated, but the answer is lost
            return self._send(status, json.dumps(payload).encode(), "application/json")
        if self.path != "/api/graphql":
            return self._send(404, b"not found", "text/plain")
        fault = fake.faults.choose() if fake.faults else None
        if fault is not None and misbehave(self, fault, fake.faults, ANSWERS):
            return
        fake.headers_seen.append({k.lower(): v for k, v in self.headers.items()})
        if fake.pending_statuses:
            status = fake.pending_statuses.pop(0)
            return self._send(status, b'{"message":"Too Many Requests"}', "application/json")
        auth = self.headers.get("Authorization", "")
        if fake.disconnected:
            return self._send(401, json.dumps({"message": "User has disconnected this app from "
                              "their account. Please delete this token"}).encode(),
                              "application/json")
        if not auth.startswith("Bearer ") or auth[7:] not in fake.access_tokens:
            return self._send(401, b"Access token expired", "text/plain; charset=utf-8")
        request = json.loads(body)
        result = fake.graphql(request["query"], request.get("variables") or {})
        self._send(200, json.dumps(result).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str,
              headers: dict[str, str] | None = None) -> None:
        answer(self, status, body, {"Content-Type": content_type, **(headers or {})})


def _matches(root: str, node: dict[str, Any], flt: dict[str, Any]) -> bool:
    checks = {"clients": ("updatedAt", "updatedAt"), "jobs": ("completedAt", "completedAt"),
              "invoices": ("updatedAt", "updatedAt")}
    key, field = checks[root]
    if root == "jobs" and "completedAt" in flt and node.get("completedAt") is None:
        return False
    if root == "invoices" and flt.get("status") and node.get("invoiceStatus") != flt["status"]:
        return False
    rng = flt.get(key) or {}
    value = parse_time(node.get(field))
    if rng.get("after") and (value is None or value <= parse_time(rng["after"])):
        return False
    return not (rng.get("before") and (value is None or value >= parse_time(rng["before"])))


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode().rstrip("=")


def _unb64(text: str) -> str:
    return base64.b64decode(text + "=" * (-len(text) % 4)).decode()
