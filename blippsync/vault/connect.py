"""Connecting and disconnecting an OAuth connection: storing handed-over tokens, revoking."""

from __future__ import annotations

import logging
import uuid
from datetime import datetime

import httpx
import sqlalchemy as sa

from blippsync.config import Config
from blippsync.connections import Connection, ensure_connection
from blippsync.connector import OAuthCapableConnector
from blippsync.database import Database
from blippsync.vault import oauth
from blippsync.vault.keys import load_keyring
from blippsync.vault.provider import refresher_for
from blippsync.vault.store import Tokens, store_for

log = logging.getLogger("blippsync.vault")
_RETIRE_OTHERS = sa.text("""
    UPDATE public.connections SET status = 'disconnected', status_reason = :reason
    WHERE business_id = :b AND connector = :c AND account_id <> :a AND status <> 'disconnected'
""")


def store_tokens(db: Database, config: Config, business_id: uuid.UUID, connector_name: str,
                 account_id: str, refresh_token: str, access_token: str | None = None,
                 expires_at: datetime | None = None) -> Connection:
    """Store a connection's tokens (sealed) and mark it connected. A business has one
    QuickBooks/Jobber account: connecting another one retires the previous connection."""
    ring = load_keyring(config)
    with db.begin() as conn:
        connection = ensure_connection(conn, business_id, connector_name, account_id)
        store = store_for(connector_name)
        store.lock(conn, connection)
        store.save(conn, connection, ring, Tokens(access_token=access_token,
                                                  refresh_token=refresh_token,
                                                  expires_at=expires_at))
        conn.execute(_RETIRE_OTHERS, {"b": business_id, "c": connector_name, "a": account_id,
                                      "reason": f"replaced by account {account_id}"})
    return connection


def disconnect(db: Database, config: Config, connection: Connection,
               connector: OAuthCapableConnector, http: httpx.Client) -> str:
    """Revoke the refresh token at the provider (best effort), forget the tokens and mark
    the connection disconnected. Returns what happened at the provider, for the user."""
    refresher = refresher_for(db, config, connection, connector, http)
    with db.begin() as conn:
        refresher.store.lock(conn, connection)
        tokens = refresher.store.read(conn, connection, refresher.ring)
        token = tokens and (tokens.refresh_token or tokens.access_token)
        if not token:
            outcome = "no token was stored, nothing to revoke"
        else:
            try:
                oauth.revoke(http, refresher.spec, token)
                outcome = "token revoked at the provider"
            except oauth.TokenEndpointError as exc:
                outcome = f"revocation failed ({exc}); tokens forgotten here anyway"
                log.warning("%s connection %s: %s", connection.connector, connection.id, outcome)
        refresher.store.mark(conn, connection, "disconnected", "disconnected by the operator")
    return outcome
