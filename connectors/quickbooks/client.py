"""One QuickBooks company's API: authenticated GETs within the rate limits, retried when
Intuit says "later", with every error naming Intuit's transaction id (intuit_tid).

- 429, the XML ThrottleExceeded body (sent even when JSON was asked for) and 5xx are
  retried with backoff, honouring Retry-After, else 60 s for a throttle;
- a 401 triggers one token refresh and one retry; a second 401 needs a human;
- a Fault inside a 200 is an error like any other.
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
from blippsync.errors import AuthError, ConnectorError, TransientError
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
        refreshed, attempt = False, 0
        while True:
            token = self.tokens.access_token()
            try:
                with self.limiter.slot(self.realm_id) if self.limiter else nullcontext():
                    self.requests += 1
                    response = self.http.get(url, params=query, timeout=s.timeout_seconds,
                                             headers={"Authorization": f"Bearer {token}",
                                                      "Accept": "application/json"})
            except httpx.TransportError as exc:
                attempt = self._retry_or_raise(attempt, None, f"{type(exc).__name__}", path)
                continue
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
            throttled = (response.status_code == 429
                         or bool(_THROTTLE.search(response.content[:4096])))
            if throttled or response.status_code >= 500:
                attempt = self._retry_or_raise(attempt, response, "throttled" if throttled
                                               else f"HTTP {response.status_code}", path)
                continue
            return self._body(response, path, tid)

    def _retry_or_raise(self, attempt: int, response: httpx.Response | None, what: str,
                        path: str) -> int:
        s = self.settings
        tid = response.headers.get("intuit_tid") if response is not None else None
        attempt += 1
        if attempt > s.max_retries:
            raise TransientError(f"quickbooks realm {self.realm_id} {path}: {what}, "
                                 f"{s.max_retries} retries spent (intuit_tid={tid})")
        delay = _retry_after(response)
        if delay is None:
            delay = (s.retry_after_default_seconds if what == "throttled"
                     else min(s.backoff_seconds * 2 ** (attempt - 1), BACKOFF_MAX_SECONDS))
        self.log.warning("quickbooks realm %s %s: %s (intuit_tid=%s); retry %d/%d in %.1fs",
                         self.realm_id, path, what, tid, attempt, s.max_retries, delay)
        if what == "throttled":
            self.on_throttle_wait(delay)
        self.sleep(delay)
        return attempt

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


def _retry_after(response: httpx.Response | None) -> float | None:
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


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
    if kind == "SystemFault":
        return TransientError(text)
    return ConnectorError(text)
