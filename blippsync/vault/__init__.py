"""The token vault: OAuth tokens encrypted at rest, refreshed race-free across processes.

Public surface (what the sync engine, the daemon and the CLI call):

    token_provider(db, config, connection, connector, http) -> TokenProvider
    refresh_if_due(db, config, connection, connector, http, ahead_seconds) -> bool
    connector_settings(config, name, connection_settings) -> dict
    store_tokens(db, config, business_id, connector_name, account_id, refresh_token, ...)
    disconnect(db, config, connection, connector, http) -> str
    load_keyring(config) -> KeyRing;  generate_key() -> str;  rotate_keys(db, ring) -> RotateReport
"""

from __future__ import annotations

from blippsync.vault.connect import disconnect, store_tokens
from blippsync.vault.keys import KeyRing, generate_key, load_keyring
from blippsync.vault.provider import (
    VaultTokenProvider,
    connector_settings,
    refresh_if_due,
    refresher_for,
    token_provider,
)
from blippsync.vault.rotate import RotateReport, rotate_keys
from blippsync.vault.store import Tokens, store_for

__all__ = [
    "KeyRing",
    "RotateReport",
    "Tokens",
    "VaultTokenProvider",
    "connector_settings",
    "disconnect",
    "generate_key",
    "load_keyring",
    "refresh_if_due",
    "refresher_for",
    "rotate_keys",
    "store_for",
    "store_tokens",
    "token_provider",
]
