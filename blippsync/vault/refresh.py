"""Refreshing a connection's tokens, safely with any number of processes.

One refresh: take the connection's lock (transaction-scoped advisory lock), re-read the
tokens inside it (another process may have refreshed a moment ago; then we are done),
call the token endpoint, and commit the new pair, the refresh token it replaced and the
expiry at once, before anything else can fail.

Failures, by what the provider may have done:
- unreachable, 5xx, 429: nothing happened there; retried in place with jittered backoff
  inside the lock (blippsync.retrying), then TransientError. Nothing is marked.
- answer lost (timeout or dropped connection after sending): the provider may have
  rotated the token already. We retry with the same token; a provider with a grace period
  (Intuit keeps the previous token valid for a while) answers and we recover. If it
  answers invalid_grant instead, the rotation is lost for good and the reason says so.
- invalid_grant: one retry with the previous refresh token (kept for exactly this), then
  the connection is marked token_expired with the reason, and never retried until it is
  reconnected.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from blippsync.connections import Connection
from blippsync.connector import OAuthCapableConnector, OAuthClientSpec
from blippsync.database import Database
from blippsync.errors import AuthError, BlippsyncError, ConfigError, TransientError
from blippsync.retrying import RetryableFault, RetryPolicy, call_with_retries
from blippsync.vault import oauth
from blippsync.vault.keys import KeyRing
from blippsync.vault.store import Tokens, TokenStore

log = logging.getLogger("blippsync.vault")
REFRESH_BACKOFF_SECONDS = 0.5
REFRESH_BACKOFF_MAX_SECONDS = 8.0
LOST_AND_ROTATED = ("the provider rotated the refresh token but its answer was lost in transit "
                    "({detail}); the old token is now refused, so the connection must be "
                    "reconnected")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Refresher:
    """Everything one connection's refreshes need."""

    db: Database
    ring: KeyRing
    store: TokenStore
    connection: Connection
    connector: OAuthCapableConnector
    spec: OAuthClientSpec
    http: httpx.Client
    margin_seconds: int = 300
    attempts: int = 4
    clock: Callable[[], datetime] = _now
    sleep: Callable[[float], None] = field(default=time.sleep)

    def is_fresh(self, tokens: Tokens, rejected: str | None = None,
                 margin_seconds: int | None = None) -> bool:
        if not tokens.access_token or tokens.status != "connected":
            return False
        if rejected is not None and tokens.access_token == rejected:
            return False
        margin = self.margin_seconds if margin_seconds is None else margin_seconds
        if rejected is not None:
            margin = 0  # someone refreshed since the 401: any unexpired token will do
        return tokens.expires_at is not None and tokens.expires_at - timedelta(
            seconds=margin) > self.clock()

    def read(self) -> Tokens | None:
        with self.db.connect() as conn:
            return self.store.read(conn, self.connection, self.ring)

    def refresh(self, rejected: str | None = None, force: bool = False,
                margin_seconds: int | None = None) -> Tokens:
        """Fresh tokens: someone else's if they refreshed already, else ours."""
        outcome: Tokens | BlippsyncError
        with self.db.begin() as conn:
            self.store.lock(conn, self.connection)
            current = self.store.read(conn, self.connection, self.ring)
            if current is None or not current.refresh_token or current.status != "connected":
                outcome = AuthError(self._not_connected(current))
            elif not force and self.is_fresh(current, rejected, margin_seconds):
                return current
            else:
                outcome = self._exchange(conn, current)
        if isinstance(outcome, BlippsyncError):
            raise outcome
        return outcome

    def _exchange(self, conn: Any, current: Tokens) -> Tokens | BlippsyncError:
        assert current.refresh_token is not None
        lost: list[oauth.TokenEndpointError] = []
        tokens_to_try = [current.refresh_token]
        previous = current.previous_refresh_token
        if previous and previous != current.refresh_token:
            tokens_to_try.append(previous)
        policy = RetryPolicy(attempts=self.attempts, initial_seconds=REFRESH_BACKOFF_SECONDS,
                             max_seconds=REFRESH_BACKOFF_MAX_SECONDS,
                             jitter_seconds=REFRESH_BACKOFF_SECONDS)
        for n, used in enumerate(tokens_to_try):
            try:
                response = call_with_retries(functools.partial(self._grant, used, lost), policy,
                                             what=f"{self._name()}: token refresh", log=log,
                                             sleep=self.sleep)
            except TransientError as exc:
                return exc
            except oauth.TokenEndpointError as exc:
                tid = f" intuit_tid={exc.intuit_tid}" if exc.intuit_tid else ""
                if exc.kind == oauth.INVALID_GRANT:
                    if n + 1 < len(tokens_to_try):
                        log.warning("%s: refresh token refused (%s)%s; retrying once with the "
                                    "previous refresh token", self._name(), exc, tid)
                        continue
                    reason = (LOST_AND_ROTATED.format(detail=str(lost[-1])) if lost
                              else f"refresh token refused by the provider: {exc}")
                    self.store.mark(conn, self.connection, "token_expired", reason)
                    log.error("%s: marked token_expired: %s%s", self._name(), reason, tid)
                    return AuthError(f"{self._name()}: {reason}; reconnect with "
                                     f"`blippsync connect {self.connection.connector}`")
                if exc.kind == oauth.INVALID_CLIENT:
                    return ConfigError(f"{self._name()}: the provider refused our client id or "
                                       f"secret ({exc}){tid}; check the {self.connection.connector}"
                                       " client_id/client_secret settings")
                return AuthError(f"{self._name()}: {exc}{tid}")
            return self._store(conn, current, used, response, lost[-1] if lost else None)
        raise AssertionError("unreachable")

    def _grant(self, refresh_token: str, lost: list[oauth.TokenEndpointError]
               ) -> oauth.TokenResponse:
        """One refresh grant; unsent, lost (noted) and 5xx/429 answers are retryable."""
        try:
            return oauth.refresh_grant(self.http, self.spec, refresh_token)
        except oauth.TokenEndpointError as exc:
            if exc.kind not in (oauth.UNSENT, oauth.TRANSIENT, oauth.LOST):
                raise
            if exc.kind == oauth.LOST:
                lost.append(exc)
            tid = f" intuit_tid={exc.intuit_tid}" if exc.intuit_tid else ""
            raise RetryableFault(f"{exc}{tid}") from None

    def _store(self, conn: Any, current: Tokens, used: str, response: oauth.TokenResponse,
               lost: oauth.TokenEndpointError | None) -> Tokens:
        now = self.clock()
        refresh_in = response.data.get("x_refresh_token_expires_in")
        new = Tokens(access_token=response.access_token,
                     refresh_token=response.refresh_token or used,
                     previous_refresh_token=used,
                     expires_at=self.connector.token_expiry(response.data, now),
                     refresh_expires_at=(now + timedelta(seconds=int(refresh_in))
                                         if isinstance(refresh_in, int | float) else None))
        # committed by `refresh` as soon as this returns: nothing else runs in between
        self.store.save(conn, self.connection, self.ring, new)
        if lost is not None:
            log.warning("%s: the token endpoint's answer was lost (%s); retrying with the same "
                        "refresh token succeeded: recovered", self._name(), lost)
        elif used != current.refresh_token:
            log.warning("%s: recovered with the previous refresh token", self._name())
        return replace(new, status="connected")

    def _name(self) -> str:
        c = self.connection
        return f"{c.connector} connection {c.id} (account {c.account_id or '-'})"

    def _not_connected(self, current: Tokens | None) -> str:
        if current is None or not current.refresh_token:
            return (f"{self._name()}: no tokens stored; connect it with "
                    f"`blippsync connect {self.connection.connector}`")
        return (f"{self._name()} is {current.status}"
                + (f": {current.status_reason}" if current.status_reason else "")
                + f"; reconnect with `blippsync connect {self.connection.connector}`")
