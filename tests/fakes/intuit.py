"""A loopback fake of Intuit: the OAuth token endpoint and the slice of the QuickBooks
Accounting API the connector uses (query, cdc, read by id), with the real envelopes.

The token endpoint is strict: every refresh rotates the refresh token and a used one is
refused with invalid_grant (unless `grace_previous`, Intuit's real behaviour of honouring
the previous token for a while). `drop_next_refresh` rotates and then hangs up without an
answer: the lost-response case; `drop_refresh_rate` does the same at random.

`faults` (a FaultPlan) makes API calls misbehave as Intuit's do: 429 with the XML
ThrottleExceeded body, 500/503, a SystemFault inside a 200, slow answers, dropped
connections.
"""

from __future__ import annotations

import base64
import itertools
import json
import random
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from fakes.faults import FaultAnswers, FaultPlan, QuietServer, answer, misbehave

CLIENT_ID = "fake-client-id"
CLIENT_SECRET = "fake-client-secret-0123456789"
_QUERY = re.compile(
    r"SELECT \* FROM (?P<entity>\w+)(?: WHERE (?P<where>.*?))?"
    r"(?: ORDER ?BY (?P<order>[\w.]+)(?: ASC)?)?"
    r"(?: STARTPOSITION (?P<start>\d+))?(?: MAXRESULTS (?P<max>\d+))?\s*$", re.I)
_SINCE = re.compile(r"MetaData\.LastUpdatedTime (?P<op>>=|>) '(?P<ts>[^']+)'", re.I)
THROTTLE_XML = (b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><IntuitResponse '
                b'xmlns="http://schema.intuit.com/finance/v3" time="2026-11-20T04:15:11.919-08:00">'
                b'<Fault type="SERVICE"><Error code="3001"><Message>message=ThrottleExceeded; '
                b'errorCode=003001; statusCode=429</Message><Detail>The request limit was reached.'
                b'  Try again later</Detail></Error></Fault></IntuitResponse>')
SYSTEM_FAULT = {"Fault": {"Error": [{
    "Message": "An application error has occurred while processing your request",
    "Detail": "System Failure Error: An unexpected error occurred while accessing or saving "
              "your data. Please wait a few minutes and try again. If the problem persists, "
              "contact customer support.", "code": "10000", "element": ""}],
    "type": "SystemFault"}, "time": "2026-11-20T04:15:11.919-08:00"}


def parse_ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))

_JSON = {"Content-Type": "application/json;charset=UTF-8",
         "intuit_tid": "1-6788f7a0-06c38dcf1bba5a6e36487d41"}
ANSWERS = FaultAnswers(
    throttle=(429, {**_JSON, "Content-Type": "application/xml"}, THROTTLE_XML),
    unavailable=((503, {**_JSON, "Content-Type": "text/html"},
                  b"<html><body>Service Unavailable</body></html>"),
                 (500, _JSON, json.dumps(SYSTEM_FAULT).encode())),
    fault_in_200=(200, _JSON, json.dumps(SYSTEM_FAULT).encode()))


@dataclass
class IntuitState:
    """What the fake knows; tests read and change it directly (under `lock`)."""

    refresh_token: str = "RT1-initial-0000000000"
    previous_refresh_token: str | None = None
    access_tokens: set[str] = field(default_factory=set)
    expires_in: int = 3600
    grace_previous: bool = False
    drop_next_refresh: bool = False
    fail_next_refreshes: int = 0  # answer 503 this many times
    drop_refresh_rate: float = 0.0  # rotate, then hang up without an answer, this often
    faults: FaultPlan | None = None  # misbehaviour of API calls
    refused: set[str] = field(default_factory=set)  # "invoice/777": answered a ValidationFault
    refreshes: int = 0
    invalid_grants: int = 0
    revoked: list[str] = field(default_factory=list)
    # entity type -> id -> object
    entities: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    cdc_deleted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # "GET /path?query" of API calls
    script: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)  # canned answers
    lock: threading.Lock = field(default_factory=threading.Lock)
    _counter: Any = field(default_factory=lambda: itertools.count(1))

    def issue(self) -> dict[str, Any]:
        n = next(self._counter)
        self.previous_refresh_token = self.refresh_token
        self.refresh_token = f"RT1-rotated-{n:010d}"
        access = f"eyJhbGciOiJub25lIn0.eyJuIjo{n:06d}fQ.sig{n:08d}"
        self.access_tokens.add(access)
        self.refreshes += 1
        return {"token_type": "bearer", "access_token": access, "expires_in": self.expires_in,
                "refresh_token": self.refresh_token, "x_refresh_token_expires_in": 8726400}

    def add(self, entity: str, obj: dict[str, Any]) -> None:
        self.entities.setdefault(entity, {})[str(obj["Id"])] = obj


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: IntuitState

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers = {"Content-Type": "application/json;charset=UTF-8",
                   "intuit_tid": "1-6788f7a0-06c38dcf1bba5a6e36487d41", **(headers or {})}
        answer(self, status, raw, headers)

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def do_POST(self) -> None:  # noqa: N802
        body = self._body()
        path = urlsplit(self.path).path
        if path.endswith("/revoke"):
            with self.state.lock:
                self.state.revoked.append(json.loads(body)["token"])
            return self._send(200, b"")
        expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if self.headers.get("Authorization") != expected:
            return self._send(401, {"error": "invalid_client"})
        form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
        st = self.state
        with st.lock:
            if st.fail_next_refreshes > 0:
                st.fail_next_refreshes -= 1
                return self._send(503, b"<html>Service Unavailable</html>")
            token = form.get("refresh_token")
            if form.get("grant_type") == "authorization_code":
                answer = st.issue()
            elif token == st.refresh_token or (st.grace_previous and token is not None
                                               and token == st.previous_refresh_token):
                if token == st.previous_refresh_token:  # Intuit: same current pair again
                    st.refresh_token, st.previous_refresh_token = st.previous_refresh_token, None
                answer = st.issue()
            else:
                st.invalid_grants += 1
                return self._send(400, {"error": "invalid_grant",
                                        "error_description": "Incorrect or invalid refresh token"})
            if st.drop_next_refresh or random.random() < st.drop_refresh_rate:
                st.drop_next_refresh = False
                self.close_connection = True
                return  # rotated, but the answer never leaves: the connection just drops
        self._send(200, answer)

    def do_GET(self) -> None:  # noqa: N802
        st = self.state
        fault = st.faults.choose() if st.faults else None
        if fault is not None and misbehave(self, fault, st.faults, ANSWERS):
            return
        with st.lock:
            st.requests.append(f"GET {self.path}")
            if st.script:
                status, headers, raw = st.script.pop(0)
                return self._send(status, raw, headers)
            auth = self.headers.get("Authorization", "")
            if not auth.startswith("Bearer ") or auth[7:] not in st.access_tokens:
                return self._send(401, {"warnings": None, "fault": {"error": [{
                    "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                    "detail": "Token expired", "code": "3200", "element": None}],
                    "type": "AUTHENTICATION"}, "time": 1633520295688})
            parts = urlsplit(self.path)
            params = {k: v[0] for k, v in parse_qs(parts.query).items()}
            segments = parts.path.split("/")  # '', v3, company, realm, what, [id]
            what = segments[4]
            if what == "query":
                return self._send(200, self._query(unquote(params["query"])))
            if what == "cdc":
                return self._send(200, self._cdc(params["entities"].split(","),
                                                 parse_ts(params["changedSince"])))
            if f"{what}/{segments[5]}" in st.refused:
                return self._send(400, {"Fault": {"Error": [{
                    "Message": "A business validation error has occurred while processing your "
                    "request", "Detail": "Business Validation Error: Invalid ID", "code": "6000",
                    "element": ""}], "type": "ValidationFault"},
                    "time": "2026-11-20T04:15:11.919-08:00"})
            entity = what.capitalize() if what != "creditmemo" else "CreditMemo"
            obj = st.entities.get(entity, {}).get(segments[5])
            if obj is None:
                return self._send(400, {"Fault": {"Error": [{
                    "Message": "Object Not Found", "Detail": "Object Not Found : Something you're "
                    "trying to use has been made inactive. Check the fields with accounts, "
                    "customers, items, vendors or employees.", "code": "610", "element": ""}],
                    "type": "ValidationFault"}, "time": "2024-06-20T13:16:17.000-07:00"})
            return self._send(200, {entity: obj, "time": "2024-06-20T13:16:17.000-07:00"})

    def _query(self, query: str) -> dict[str, Any]:
        m = _QUERY.match(query.strip())
        assert m, f"fake cannot parse query {query!r}"
        entity, where = m["entity"], m["where"] or ""
        rows = list(self.state.entities.get(entity, {}).values())
        if entity == "Customer" and not re.search(r"Active IN \(true, ?false\)", where, re.I):
            rows = [r for r in rows if r.get("Active", True)]
        since = _SINCE.search(where)
        if since:
            bound = parse_ts(since["ts"])
            strict = since["op"] == ">"
            rows = [r for r in rows if (parse_ts(r["MetaData"]["LastUpdatedTime"]) > bound
                                        if strict else
                                        parse_ts(r["MetaData"]["LastUpdatedTime"]) >= bound)]
        rows.sort(key=lambda r: (parse_ts(r["MetaData"]["LastUpdatedTime"]), int(r["Id"])))
        start, size = int(m["start"] or 1), int(m["max"] or 100)
        page = rows[start - 1:start - 1 + size]
        if not page:
            return {"QueryResponse": {}, "time": "2024-06-20T13:16:17.000-07:00"}
        return {"QueryResponse": {entity: page, "startPosition": start, "maxResults": len(page)},
                "time": "2024-06-20T13:16:17.000-07:00"}

    def _cdc(self, entities: list[str], since: datetime) -> dict[str, Any]:
        responses = []
        for entity in entities:
            rows = [r for r in self.state.entities.get(entity, {}).values()
                    if parse_ts(r["MetaData"]["LastUpdatedTime"]) >= since]
            rows += [d for e, d in self.state.cdc_deleted
                     if e == entity and parse_ts(d["MetaData"]["LastUpdatedTime"]) >= since]
            responses.append({entity: rows, "startPosition": 1, "maxResults": len(rows)}
                             if rows else {})
        return {"CDCResponse": [{"QueryResponse": responses}],
                "time": "2024-06-20T13:16:17.000-07:00"}


@contextmanager
def fake_intuit(state: IntuitState | None = None) -> Iterator[tuple[str, IntuitState]]:
    """Serve the fake on 127.0.0.1:<free port>; yields (base URL, state)."""
    state = state or IntuitState()
    handler = type("Handler", (_Handler,), {"state": state})
    server = QuietServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", state
    finally:
        server.shutdown()
        server.server_close()
