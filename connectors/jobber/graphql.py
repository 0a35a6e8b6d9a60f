"""Jobber's GraphQL endpoint: one POST per query, with everything that can go wrong.

- The version header is required; a versioning warning is logged once per client.
- Errors inside a 200 are errors (`THROTTLED` is retried after the bucket refills).
- A 401 (often `text/plain`) means the access token was refused: one refresh through the
  token vault, then one retry; a second refusal needs a human.
- 429 (2,500 requests per 5 minutes per app and account) and 5xx back off and retry.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from blippsync.connector import TokenProvider
from blippsync.errors import AuthError, ConnectorError, TransientError
from connectors.jobber.cost import query_cost
from connectors.jobber.throttle import CostThrottle

VERSION_HEADER = "X-JOBBER-GRAPHQL-VERSION"
MAX_THROTTLED_RETRIES = 6
MAX_BACKOFF_RETRIES = 5
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 60.0
_DISCONNECTED_HINTS = ("disconnected this app", "account is not active")


class JobberDisconnected(AuthError):
    """The account removed the app (or is inactive): tokens are dead, mark disconnected."""

    connection_status = "disconnected"


class GraphQLError(ConnectorError):
    """Jobber answered with `errors` the connector cannot retry."""


class GraphQLClient:
    def __init__(self, http: httpx.Client, url: str, version: str, tokens: TokenProvider,
                 log: logging.Logger, throttle: CostThrottle | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 timeout_seconds: float = 30.0,
                 on_throttle_wait: Callable[[float], None] = lambda seconds: None) -> None:
        self.http, self.url, self.version, self.tokens, self.log = http, url, version, tokens, log
        self.on_throttle_wait = on_throttle_wait  # ConnectorContext.on_throttle_wait
        self.throttle = throttle or CostThrottle(sleep=sleep)
        self.sleep = sleep
        self.timeout_seconds = timeout_seconds
        self.requests = 0
        self.throttled = 0  # THROTTLED answers met (and absorbed) so far
        self._warned: set[str] = set()

    def execute(self, query: str, variables: Mapping[str, Any] | None = None,
                shape: str | None = None) -> dict[str, Any]:
        """The `data` of a successful answer; raises the errors tree otherwise."""
        variables = dict(variables or {})
        shape = shape or f"{query[:60]}|{variables.get('first')}"
        estimate = float(query_cost(query, variables))
        token = self.tokens.access_token()
        refreshed = throttled = backoffs = 0
        while True:
            waited = self.throttle.wait_for(self.throttle.expected_cost(shape, estimate))
            if waited > 0:
                self.on_throttle_wait(waited)
                self.log.info("jobber: waited %.2fs for the query-cost bucket", waited)
            response = self._post(query, variables, token)
            status = response.status_code
            body = _body(response)
            if status == 401 or (status == 403 and _disconnected(body)):
                if _disconnected(body):
                    raise JobberDisconnected(f"Jobber: {_message(body)}")
                if refreshed:
                    raise AuthError("Jobber refused a freshly refreshed access token (HTTP 401:"
                                    f" {_message(body)}); reconnect with `blippsync connect "
                                    "jobber`")
                token = self.tokens.refresh_after_rejection(token)
                refreshed += 1
                continue
            if status == 429 and _is_throttled(body):  # a THROTTLED body, whatever the status
                status = 200
            if status == 429 or status >= 500:
                backoffs += 1
                if backoffs > MAX_BACKOFF_RETRIES:
                    raise TransientError(f"Jobber answered HTTP {status} {backoffs} times "
                                         f"in a row: {_message(body)}")
                pause = _backoff_seconds(response, backoffs)
                self.log.warning("jobber: HTTP %d, backing off %.1fs", status, pause)
                if status == 429:
                    self.on_throttle_wait(pause)
                self.sleep(pause)
                continue
            if not isinstance(body, dict):
                raise ConnectorError(f"Jobber answered HTTP {status} with a non-JSON body: "
                                     f"{_message(body)}")
            self._note_extensions(shape, body.get("extensions") or {})
            errors = body.get("errors") or []
            if any(_code(e) == "THROTTLED" for e in errors):
                throttled += 1
                self.throttled += 1
                if throttled > MAX_THROTTLED_RETRIES:
                    raise TransientError("Jobber kept answering THROTTLED; will retry later")
                continue  # the observed reading makes wait_for sleep long enough
            if status == 404 and "version" in _message(body).lower():
                raise ConnectorError(f"Jobber: {_message(body)} (check jobber.api_version)")
            if _disconnected(body):
                raise JobberDisconnected(f"Jobber: {_message(body)}")
            if errors:
                raise GraphQLError("Jobber GraphQL error: " + "; ".join(
                    _describe(e) for e in errors[:3]))
            if status != 200 or "data" not in body:
                raise ConnectorError(f"Jobber answered HTTP {status}: {_message(body)}")
            return body["data"] or {}

    def _post(self, query: str, variables: Mapping[str, Any], token: str) -> httpx.Response:
        self.requests += 1
        try:
            return self.http.post(self.url, json={"query": query, "variables": variables},
                                  headers={"Authorization": f"Bearer {token}",
                                           VERSION_HEADER: self.version,
                                           "Accept": "application/json"},
                                  timeout=self.timeout_seconds)
        except httpx.TimeoutException as exc:
            raise TransientError(f"Jobber did not answer in time ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise TransientError(f"cannot reach Jobber: {type(exc).__name__}") from None

    def _note_extensions(self, shape: str, extensions: Mapping[str, Any]) -> None:
        self.throttle.observe(shape, extensions.get("cost"))
        warning = (extensions.get("versioning") or {}).get("warning")
        if warning and warning not in self._warned:
            self._warned.add(warning)
            self.log.warning("Jobber API version %s: %s", self.version, warning)


def _body(response: httpx.Response) -> Any:
    try:
        return json.loads(response.content) if response.content else None
    except ValueError:
        return response.text


def _message(body: Any) -> str:
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):
            return str(err.get("message") or err)
        if body.get("message"):
            return str(body["message"])
        if body.get("errors"):
            return _describe(body["errors"][0])
        return str(err or "no message")
    return (str(body) if body else "empty body").strip()[:200]


def _disconnected(body: Any) -> bool:
    return any(hint in _message(body).lower() for hint in _DISCONNECTED_HINTS)


def _is_throttled(body: Any) -> bool:
    return isinstance(body, dict) and any(_code(e) == "THROTTLED"
                                          for e in body.get("errors") or [])


def _code(error: Any) -> str | None:
    return ((error or {}).get("extensions") or {}).get("code") if isinstance(error, dict) else None


def _describe(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)[:200]
    path = ".".join(str(p) for p in error.get("path") or [])
    return f"{error.get('message', 'error')}" + (f" (at {path})" if path else "")


def _backoff_seconds(response: httpx.Response, attempt: int) -> float:
    retry_after = response.headers.get("Retry-After")
    if retry_after and retry_after.strip().isdigit():
        return min(float(retry_after), BACKOFF_MAX_SECONDS)
    return min(BACKOFF_BASE_SECONDS * 2.0 ** (attempt - 1), BACKOFF_MAX_SECONDS)
