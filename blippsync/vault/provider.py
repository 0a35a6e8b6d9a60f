"""The TokenProvider a connector is handed: a valid access token, refreshed only when due."""

from __future__ import annotations

import threading

import httpx

from blippsync.config import Config, connector_settings
from blippsync.connections import Connection
from blippsync.connector import OAuthCapableConnector
from blippsync.database import Database
from blippsync.errors import PluginError
from blippsync.redaction import register_secret
from blippsync.vault.keys import load_keyring
from blippsync.vault.refresh import Refresher
from blippsync.vault.store import Tokens, store_for


class VaultTokenProvider:
    """Access tokens for one connection: cached in memory, re-read from the database, and
    refreshed under the connection's lock only when within the margin of expiry."""

    def __init__(self, refresher: Refresher):
        self.refresher = refresher
        self._cached: Tokens | None = None
        self._mutex = threading.Lock()  # one refresh at a time within this process too

    def access_token(self) -> str:
        with self._mutex:
            if self._cached is None or not self.refresher.is_fresh(self._cached):
                stored = self.refresher.read()
                if stored is None or not self.refresher.is_fresh(stored):
                    stored = self.refresher.refresh()
                self._cached = stored
            assert self._cached.access_token is not None
            return self._cached.access_token

    def refresh_after_rejection(self, rejected_token: str) -> str:
        with self._mutex:
            self._cached = self.refresher.refresh(rejected=rejected_token)
            assert self._cached.access_token is not None
            return self._cached.access_token


def refresher_for(db: Database, config: Config, connection: Connection,
                  connector: OAuthCapableConnector, http: httpx.Client) -> Refresher:
    if not hasattr(connector, "oauth_spec"):
        raise PluginError(f"connector {connection.connector!r} has no oauth_spec(): it cannot "
                          "use the token vault")
    spec = connector.oauth_spec(connector_settings(config, connection.connector,
                                                   connection.settings))
    register_secret(spec.client_secret)
    return Refresher(db=db, ring=load_keyring(config), store=store_for(connection.connector),
                     connection=connection, connector=connector, spec=spec, http=http,
                     margin_seconds=config["vault.refresh_margin_seconds"],
                     attempts=config["vault.refresh_attempts"])


def token_provider(db: Database, config: Config, connection: Connection,
                   connector: OAuthCapableConnector, http: httpx.Client) -> VaultTokenProvider:
    """The TokenProvider to put in ConnectorContext.tokens for an OAuth connector."""
    return VaultTokenProvider(refresher_for(db, config, connection, connector, http))


def refresh_if_due(db: Database, config: Config, connection: Connection,
                   connector: OAuthCapableConnector, http: httpx.Client,
                   ahead_seconds: int) -> bool:
    """For the daemon's token sweep: refresh when the access token expires within
    `ahead_seconds`. True when this call refreshed (False: still fresh, or another process
    just did). Raises AuthError (and marks the connection) on invalid_grant."""
    refresher = refresher_for(db, config, connection, connector, http)
    stored = refresher.read()
    if stored is not None and refresher.is_fresh(stored, margin_seconds=ahead_seconds):
        return False
    fresh = refresher.refresh(margin_seconds=ahead_seconds)
    return stored is None or fresh.access_token != stored.access_token
