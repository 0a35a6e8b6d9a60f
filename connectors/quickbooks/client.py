"""One QuickBooks company's API: authenticated GETs within the rate limits, retried when
Intuit says "later", with every error naming Intuit's transaction id (intuit_tid).

- 429, the XML ThrottleExceeded body (sent even when JSON was asked for), 5xx, a
  SystemFault inside any answer (Intuit: "please wait a few minutes and try again"),
  timeouts and dropped connections are retried in place (blippsync.retrying), honouring
  Retry-After in seconds or as a date, else 60 s for a throttle and a jittered backoff
  for the rest;
- a 401 triggers one token refresh and one retry; a second 401 needs a human;
- any other Fault (ValidationFault...) is final.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from typing import Any

import httpx

from blippsync.connector import RateLimiter, TokenProvider
from blippsync.errors import AuthError, ConnectorError
from blippsync.retrying import RetryableFault, RetryPolicy, call_with_retries, retry_after_seconds
from connectors.quickbooks.settings import QboSettings

_THROTTLE = re.compile(rb"ThrottleExceeded|errorCode=003001|code=\"3001\"")
BACKOFF_MAX_SECONDS = 120.0


class QboNotFound(ConnectorError):
    """Fault 610: the object is gone (deleted or made inactive since it was announced)."""


class QboClient:
    def __init__(self, http: httpx.Client, tokens: TokenProvider | None, realm_id: str,
                 settings: QboSettings, limiter: RateLimiter | None, log: logging.Logger,
                 sleep: Callable[[float], None] = time.sleep,
                 on_throttle_wait: Callable[[float], None] = lambda seconds: None):
        if tokens is None:
            raise AuthError("quickbooks: no token provider (is the connection connected?)")
        self.http, self.tokens, self.realm_id = http, tokens, realm_id
        self.settings, self.limiter, self.log, self.sleep = settings, limiter, log, sleep
        self.on_throttle_wait = on_throttle_wait  # ConnectorContext.on_throttle_wait
        self.requests = 0

    def query(self, statement: str) -> dict[str, Any]:
        return self.get("query", {"query": statement})

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        s = self.settings
        url = f"{s.base_url}/v3/company/{self.realm_id}/{path}"
        query = {**(params or {}), "minorversion": s.minor_version}
        policy = RetryPolicy(attempts=s.max_retries + 1, initial_seconds=s.backoff_seconds,
                             max_seconds=BACKOFF_MAX_SECONDS, jitter_seconds=s.backoff_seconds)
        return call_with_retries(lambda: self._get_once(url, query, path), policy,
                                 what=f"quickbooks realm {self.realm_id} {path}", log=self.log,
                                 sleep=self.sleep, on_throttle_wait=self.on_throttle_wait)

    def _get_once(self, url: str, query: Mapping[str, Any], path: str) -> dict[str, Any]:
        """One try: a GET (and, after a 401, one refresh and one more GET)."""
        refreshed = False
        while True:
            token = self.tokens.access_token()
            try:
                with self.limiter.slot(self.realm_id) if self.limiter else nullcontext():
                    self.requests += 1
                    response = self.http.get(
                        url, params=query, timeout=self.settings.timeout_seconds,
                        headers={"Authorization": f"Bearer {token}",
                                 "Accept": "application/json"})
            except httpx.TransportError as exc:  # timeouts and dropped connections
                raise RetryableFault(f"no answer ({type(exc).__name__})") from None
            tid = response.headers.get("intuit_tid")
            if response.status_code == 401:
                if refreshed:
                    raise AuthError(f"quickbooks realm {self.realm_id}: access token refused "
                                    f"again after a refresh (intuit_tid={tid})")
                self.log.info("quickbooks %s: 401, refreshing the token once (intuit_tid=%s)",
                              path, tid)
                refreshed = True
                self.tokens.refresh_after_rejection(token)
                continue
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            if response.status_code == 429 or _THROTTLE.search(response.content[:4096]):
                raise RetryableFault(f"throttled (intuit_tid={tid})", throttled=True,
                                     retry_after=self.settings.retry_after_default_seconds
                                     if wait is None else wait)
            if response.status_code >= 500:
                raise RetryableFault(f"HTTP {response.status_code} (intuit_tid={tid})",
                                     retry_after=wait)
            return self._body(response, path, tid)

    def _body(self, response: httpx.Response, path: str, tid: str | None) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ConnectorError(f"quickbooks realm {self.realm_id} {path}: HTTP "
                                 f"{response.status_code} without a JSON body (intuit_tid={tid})")
        fault = body.get("Fault") or body.get("fault")
        if fault or response.status_code >= 400:
            raise _fault_error(self.realm_id, path, response.status_code, fault or {}, tid)
        return body


def _fault_error(realm: str, path: str, status: int, fault: Mapping[str, Any],
                 tid: str | None) -> ConnectorError:
    errors = fault.get("Error") or fault.get("error") or [{}]
    first = errors[0] if isinstance(errors, list) and errors else {}
    code = str(first.get("code") or "").lstrip("0")
    message = first.get("Message") or first.get("message") or ""
    detail = first.get("Detail") or first.get("detail") or ""
    kind = str(fault.get("type") or "")
    text = (f"quickbooks realm {realm} {path}: HTTP {status} {kind} {code}: {message}"
            f"{' - ' + detail if detail else ''} (intuit_tid={tid})")
    if code == "610":
        return QboNotFound(text)
    if status == 403 or kind.lower().startswith("auth") or code in ("3200", "3201", "3100",
                                                                      "120"):
        return AuthError(text)
    if kind == "SystemFault":  # "An unexpected error occurred ... try again": in place
        return RetryableFault(text)
    return ConnectorError(text)
