"""The connector contract: what a connector is given and what it must provide.

A connector is a small object with a name, the events it can emit, and a `sync` method
that yields records (see `blippsync.records`). It gets everything it needs through a
`ConnectorContext` and never touches the database. Optional capabilities (OAuth,
webhooks) are separate protocols, checked with `isinstance`.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

import httpx

from blippsync.records import Cursor, Record

# Configuration as read from TOML and the connection row: truly free-form per connector.
Settings = Mapping[str, Any]


class TokenProvider(Protocol):
    """Hands out a valid access token; backed by the token vault."""

    def access_token(self) -> str:
        """A token valid for a while yet (refreshed ahead of expiry under a lock)."""
        ...

    def refresh_after_rejection(self, rejected_token: str) -> str:
        """The remote answered 401 to `rejected_token`: refresh (once) and return the new one."""
        ...


class RateLimiter(Protocol):
    """Per-account API budget shared by every daemon on the database."""

    def slot(self, account: str) -> contextlib.AbstractContextManager[None]:
        """Wait for a free in-flight slot and one call of the window; hold it while used."""
        ...


class RateLimiterFactory(Protocol):
    """`ctx.shared_limiter(per_minute, max_in_flight)` (see `blippsync.rate_limits`)."""

    def __call__(self, per_minute: int, max_in_flight: int) -> RateLimiter: ...


@dataclass(frozen=True)
class ConnectorContext:
    """Everything a connector may use during one pass."""

    business_id: uuid.UUID
    connection_id: uuid.UUID | None
    account_id: str  # realm id, Jobber account id, '' when one per business
    settings: Settings  # the connection's settings merged over [plugins.<name>]
    cursor: Cursor | None  # the last committed Checkpoint.cursor, None on a first run
    http: httpx.Client
    log: logging.Logger
    full: bool = False  # a --full run: ignore the cursor, reload history
    credentials: Mapping[str, str] = field(default_factory=dict)  # decrypted, non-OAuth secrets
    tokens: TokenProvider | None = None  # for OAuth connectors
    options: Mapping[str, Any] = field(default_factory=dict)  # per-invocation (a file to import)
    now: datetime | None = None  # injected clock for tests; None means the real one
    # limits shared by every daemon on the database (see blippsync.rate_limits)
    shared_limiter: RateLimiterFactory | None = None
    # call with the seconds about to be slept for the remote's rate limits, where the wait
    # happens: the pass adds them up (SyncSummary.throttle_wait_seconds, the daemon's metric)
    on_throttle_wait: Callable[[float], None] = field(default=lambda seconds: None)


@runtime_checkable
class Connector(Protocol):
    """Plain class attributes satisfy these read-only members."""

    @property
    def name(self) -> str:
        """Lower-case letters, digits and _; also the customers.source value."""
        ...

    @property
    def version(self) -> str: ...

    @property
    def events(self) -> Sequence[str]:
        """The trigger event types it can emit."""
        ...

    @property
    def needs_oauth(self) -> bool: ...

    def sync(self, ctx: ConnectorContext) -> Iterator[Record]:
        """Yield records from `ctx.cursor` onwards, with Checkpoints as progress is made."""
        ...


def declared_credentials(connector: object) -> tuple[str, ...]:
    """The secrets a connector declares in its optional `credentials` attribute (for
    example `("api_key",)`); the sync engine hands their values in `ctx.credentials`."""
    return tuple(getattr(connector, "credentials", ()) or ())


@dataclass(frozen=True)
class OAuthClientSpec:
    """How the token vault talks to a provider's token endpoint."""

    token_url: str
    authorize_url: str
    client_id: str
    client_secret: str
    revoke_url: str | None = None
    client_auth: str = "client_secret_basic"  # or client_secret_post
    scope: str | None = None
    extra_token_headers: Mapping[str, str] = field(default_factory=dict)


@runtime_checkable
class OAuthConnector(Protocol):
    def oauth_spec(self, settings: Settings) -> OAuthClientSpec:
        """The provider's endpoints and client credentials, from configuration."""
        ...

    def token_expiry(self, token_response: Mapping[str, Any], now: datetime) -> datetime:
        """When the access token in a token response expires."""
        ...


class OAuthCapableConnector(Connector, OAuthConnector, Protocol):
    """A connector with `needs_oauth`: what the token vault and `connect` work with."""


@dataclass(frozen=True)
class WebhookNotice:
    """One change a webhook announced: which account, which entity, what happened."""

    account_id: str
    entity: str
    entity_id: str
    operation: str
    occurred_at: datetime | None = None
    delivery_id: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class WebhookConnector(Protocol):
    def verify_webhook(self, headers: Mapping[str, str], body: bytes,
                       settings: Settings) -> bool:
        """Is this delivery authentic? (signature over the raw body, constant-time compare)"""
        ...

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookNotice]:
        """The changes a verified delivery announces."""
        ...

    def fetch(self, ctx: ConnectorContext, notices: Sequence[WebhookNotice]) -> Iterator[Record]:
        """Targeted fetches of the announced entities, yielding records like `sync`."""
        ...
