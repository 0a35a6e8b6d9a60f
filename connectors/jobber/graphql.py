"""Jobber's GraphQL endpoint: one POST per query, with everything that can go wrong.

- The version header is required; a versioning warning is logged once per client.
- Errors inside a 200 are errors, except the transient ones: `THROTTLED` is retried
  after the bucket refills, `INTERNAL_SERVER_ERROR` backs off and retries.
- A 401 (often `text/plain`) means the access token was refused: one refresh through the
  token vault, then one retry; a second refusal needs a human.
- 429 (2,500 requests per 5 minutes per app and account), 5xx, timeouts and dropped
  connections back off and retry in place (blippsync.retrying), honouring Retry-After.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx

from blippsync.connector import TokenProvider
from blippsync.errors import AuthError, ConnectorError
from blippsync.retrying import RetryableFault, RetryPolicy, call_with_retries, retry_after_seconds
from connectors.jobber.cost import query_cost
from connectors.jobber.throttle import CostThrottle

VERSION_HEADER = "X-JOBBER-GRAPHQL-VERSION"
RETRY_ATTEMPTS = 8
BACKOFF_MAX_SECONDS = 60.0
TRANSIENT_CODES = frozenset({"INTERNAL_SERVER_ERROR", "SERVICE_UNAVAILABLE"})
UNAVAILABLE_MESSAGE = "Service temporarily unavailable"  # Jobber's outage body
_DISCONNECTED_HINTS = ("disconnected this app", "account is not active")


def retry_policy(backoff_seconds: float = 2.0) -> RetryPolicy:
    """THROTTLED answers wait for the bucket (a fresh reading each time); 429, 5xx,
    timeouts and dropped connections back off from `backoff_seconds`, doubling."""
    return RetryPolicy(attempts=RETRY_ATTEMPTS, initial_seconds=backoff_seconds,
                       max_seconds=BACKOFF_MAX_SECONDS, jitter_seconds=backoff_seconds)


class JobberDisconnected(AuthError):
    """The account removed the app (or is inactive): tokens are dead, mark disconnected."""

    connection_status = "disconnected"


class GraphQLError(ConnectorError):
    """Jobber answered with `errors` the connector cannot retry."""


class GraphQLClient:
    def __init__(self, http: httpx.Client, url: str, version: str, tokens: TokenProvider,
                 log: logging.Logger, throttle: CostThrottle | None = None,
                 sleep: Callable[[float], None] = time.sleep,
                 timeout_seconds: float = 30.0, policy: RetryPolicy | None = None,
                 on_throttle_wait: Callable[[float], None] = lambda seconds: None) -> None:
        self.http, self.url, self.version, self.tokens, self.log = http, url, version, tokens, log
        self.on_throttle_wait = on_throttle_wait  # ConnectorContext.on_throttle_wait
        self.throttle = throttle or CostThrottle(sleep=sleep)
        self.sleep = sleep
        self.timeout_seconds = timeout_seconds
        self.retry_policy = policy or retry_policy()
        self.requests = 0
        self.throttled = 0  # THROTTLED answers met (and absorbed) so far
        self._warned: set[str] = set()

    def execute(self, query: str, variables: Mapping[str, Any] | None = None,
                shape: str | None = None) -> dict[str, Any]:
        """The `data` of a successful answer; raises the errors tree otherwise."""
        variables = dict(variables or {})
        shape = shape or f"{query[:60]}|{variables.get('first')}"
        estimate = float(query_cost(query, variables))
        auth = {"token": self.tokens.access_token(), "refreshed": False}
        return call_with_retries(lambda: self._execute_once(query, variables, shape, estimate,
                                                            auth),
                                 self.retry_policy, what="jobber", log=self.log,
                                 sleep=self.sleep, on_throttle_wait=self.on_throttle_wait)

    def _execute_once(self, query: str, variables: dict[str, Any], shape: str, estimate: float,
                      auth: dict[str, Any]) -> dict[str, Any]:
        """One try (and, after a 401, one refresh and one more POST)."""
        while True:
            waited = self.throttle.wait_for(self.throttle.expected_cost(shape, estimate))
            if waited > 0:
                self.on_throttle_wait(waited)
                self.log.info("jobber: waited %.2fs for the query-cost bucket", waited)
            response = self._post(query, variables, auth["token"])
            status = response.status_code
            body = _body(response)
            if status == 401 or (status == 403 and _disconnected(body)):
                if _disconnected(body):
                    raise JobberDisconnected(f"Jobber: {_message(body)}")
                if auth["refreshed"]:
                    raise AuthError("Jobber refused a freshly refreshed access token (HTTP 401:"
                                    f" {_message(body)}); reconnect with `blippsync connect "
                                    "jobber`")
                auth["token"] = self.tokens.refresh_after_rejection(auth["token"])
                auth["refreshed"] = True
                continue
            if isinstance(body, dict):
                self._note_extensions(shape, body.get("extensions") or {})
            errors = (body.get("errors") or []) if isinstance(body, dict) else []
            codes = {_code(e) for e in errors}
            if "THROTTLED" in codes:  # whatever the status: the bucket reading sets the wait
                self.throttled += 1
                raise RetryableFault("THROTTLED", retry_after=0.0, throttled=True)
            if status == 429 or status >= 500 or codes & TRANSIENT_CODES \
                    or _message(body) == UNAVAILABLE_MESSAGE:
                raise RetryableFault(f"HTTP {status}: {_message(body)}", throttled=status == 429,
                                     retry_after=retry_after_seconds(
                                         response.headers.get("Retry-After")))
            if not isinstance(body, dict):
                raise ConnectorError(f"Jobber answered HTTP {status} with a non-JSON body: "
                                     f"{_message(body)}")
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
            raise RetryableFault(f"no answer in time ({type(exc).__name__})") from None
        except httpx.TransportError as exc:
            raise RetryableFault(f"cannot reach Jobber: {type(exc).__name__}") from None

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


def _code(error: Any) -> str | None:
    return ((error or {}).get("extensions") or {}).get("code") if isinstance(error, dict) else None


def _describe(error: Any) -> str:
    if not isinstance(error, dict):
        return str(error)[:200]
    path = ".".join(str(p) for p in error.get("path") or [])
    return f"{error.get('message', 'error')}" + (f" (at {path})" if path else "")
