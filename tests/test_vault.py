"""The token vault against a real PostgreSQL and the loopback fake token endpoint."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fakes.intuit import fake_intuit
from fakes.qbo_kit import KEY_A, KEY_B, connected_business, qbo_config

from blippsync.database import Database
from blippsync.errors import AuthError, ConfigError, TransientError
from blippsync.vault import (
    connector_settings,
    disconnect,
    load_keyring,
    refresh_if_due,
    refresher_for,
    rotate_keys,
    store_tokens,
    token_provider,
)
from blippsync.vault.keys import (
    DecryptError,
    KeyRing,
    SealedAt,
    generate_key,
    keyring_from_strings,
)
from blippsync.vault.store import sealed_at
from connectors.quickbooks import QuickBooksConnector

QBO = QuickBooksConnector()


@pytest.fixture
def intuit() -> Any:
    with fake_intuit() as (url, state):
        yield url, state


@pytest.fixture
def setup(tmp_path: Path, database_url: str, db: Database, intuit: Any) -> Any:
    url, state = intuit
    config = qbo_config(tmp_path, database_url, url)
    business, connection = connected_business(db, config, state.refresh_token)
    http = httpx.Client(timeout=5)
    yield config, connection, state, http
    http.close()


def _row(db: Database) -> Any:
    with db.connect() as conn:
        return conn.execute(sa.text(
            """SELECT q.business_id, q.access_token, q.refresh_token, q.previous_refresh_token,
                      q.connection_status, q.status_reason, q.token_expires_at,
                      q.refresh_token_expires_at, c.status, c.status_reason AS c_reason
               FROM public.integrations_quickbooks q
               JOIN public.connections c ON c.business_id = q.business_id
                                        AND c.connector = 'quickbooks'""")).one()


# --- keys ------------------------------------------------------------------------------


AT = SealedAt("integrations_jobber", "refresh_token", "b-1", "b-1")


def _qbo(row: Any, column: str) -> SealedAt:
    return sealed_at("integrations_quickbooks", column, row.business_id, row.business_id)


def test_ciphertext_names_its_key_and_every_key_decrypts() -> None:
    old = keyring_from_strings([KEY_A], "test")
    both = keyring_from_strings([KEY_B, KEY_A], "test")
    sealed = old.encrypt("RT1-secret-value-123", AT)
    assert sealed.startswith(f"bsv2:{old.current_id}:") and "RT1" not in sealed
    assert both.decrypt(sealed, AT) == "RT1-secret-value-123"
    assert both.encrypt("x", AT).split(":")[1] == both.current_id != old.current_id
    assert old.encrypt("same", AT) != old.encrypt("same", AT)  # fresh nonce each time


def test_wrong_key_tampering_and_plaintext_are_clear_errors() -> None:
    ring = keyring_from_strings([KEY_A], "test")
    sealed = ring.encrypt("token-value", AT)
    with pytest.raises(DecryptError, match="not among the configured keys"):
        keyring_from_strings([KEY_B], "test").decrypt(sealed, AT)
    tampered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
    with pytest.raises(DecryptError, match="corrupted, tampered"):
        ring.decrypt(tampered, AT)
    with pytest.raises(DecryptError, match="not a blippsync ciphertext"):
        ring.decrypt("RT1-plaintext-token", AT)
    with pytest.raises(ConfigError, match="32 bytes"):
        keyring_from_strings(["too-short"], "BLIPPSYNC_ENCRYPTION_KEYS")
    with pytest.raises(ConfigError, match="no encryption key"):
        keyring_from_strings([], "configuration")


def _legacy_bsv1(key: str, plaintext: str) -> str:
    """The format before binding, built by hand: AES-GCM with constant associated data."""
    import base64
    import hashlib
    import os

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    nonce = os.urandom(12)
    sealed = AESGCM(raw).encrypt(nonce, plaintext.encode(), b"blippsync-vault/v1")
    kid = hashlib.sha256(raw).hexdigest()[:8]
    return f"bsv1:{kid}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def test_a_ciphertext_opens_only_in_its_own_table_column_business_and_row() -> None:
    ring = keyring_from_strings([KEY_A], "test")
    sealed = ring.encrypt("jobber-refresh-of-b", AT)
    for elsewhere in (SealedAt("integrations_jobber", "refresh_token", "a-1", "a-1"),
                      SealedAt("integrations_quickbooks", "refresh_token", "b-1", "b-1"),
                      SealedAt("integrations_jobber", "access_token", "b-1", "b-1"),
                      SealedAt("integrations_jobber", "refresh_token", "b-1", "other-row")):
        with pytest.raises(DecryptError, match="copied from another row or business"):
            ring.decrypt(sealed, elsewhere)
    assert ring.decrypt(sealed, AT) == "jobber-refresh-of-b"


def test_unbound_bsv1_values_still_open_and_rotate_rebinds_them(db: Database,
                                                                 setup: Any) -> None:
    config, connection, state, http = setup
    with db.begin() as conn:
        conn.execute(sa.text("UPDATE public.integrations_quickbooks SET refresh_token = :r, "
                             "previous_refresh_token = NULL, access_token = NULL"),
                     {"r": _legacy_bsv1(KEY_A, state.refresh_token)})
    ring = load_keyring(config)
    assert ring.decrypt(_row(db).refresh_token, AT) == state.refresh_token  # legacy: unbound
    report = rotate_keys(db, ring)
    assert report.reencrypted["integrations_quickbooks"] == 1
    row = _row(db)
    assert row.refresh_token.startswith(f"bsv2:{ring.current_id}:")
    assert ring.decrypt(row.refresh_token, _qbo(row, "refresh_token")) == state.refresh_token
    with pytest.raises(DecryptError):
        ring.decrypt(row.refresh_token, AT)
    # and the connection still works from the rebound token
    assert token_provider(db, config, connection, QBO, http).access_token() in state.access_tokens


def test_generated_keys_are_valid_and_distinct() -> None:
    a, b = generate_key(), generate_key()
    assert a != b
    assert isinstance(keyring_from_strings([a, b], "test"), KeyRing)


def test_key_file(tmp_path: Path, database_url: str) -> None:
    keyfile = tmp_path / "keys"
    keyfile.write_text(f"# current first\n{KEY_B}\n{KEY_A}\n")
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[database]\nurl = "{database_url}"\n[encryption]\nkey_file = "keys"\n')
    from blippsync.config import load_config

    ring = load_keyring(load_config(cfg, environ={}))
    assert ring.current_id == keyring_from_strings([KEY_B], "t").current_id
    environ = {"BLIPPSYNC_ENCRYPTION_KEYS": f"{KEY_A},{KEY_B}"}
    env_ring = load_keyring(load_config(cfg, environ=environ))
    assert env_ring.current_id == keyring_from_strings([KEY_A], "t").current_id


# --- refresh -----------------------------------------------------------------------------


def test_first_use_refreshes_once_then_serves_from_cache_and_database(db: Database,
                                                                      setup: Any) -> None:
    config, connection, state, http = setup
    provider = token_provider(db, config, connection, QBO, http)
    token = provider.access_token()
    assert token in state.access_tokens and state.refreshes == 1
    assert provider.access_token() == token
    # another process's provider reads the stored token instead of refreshing
    other = token_provider(db, config, connection, QBO, http)
    assert other.access_token() == token and state.refreshes == 1
    row = _row(db)
    assert row.connection_status == "connected" and row.status == "connected"
    assert row.refresh_token.startswith("bsv2:") and row.access_token.startswith("bsv2:")
    assert row.refresh_token_expires_at is not None
    ring = load_keyring(config)
    assert ring.decrypt(row.refresh_token, _qbo(row, "refresh_token")) == state.refresh_token
    assert ring.decrypt(row.previous_refresh_token, _qbo(row, "previous_refresh_token")
                        ) == "RT1-initial-0000000000"


def test_refresh_after_rejection_refreshes_once_and_skips_if_already_done(db: Database,
                                                                          setup: Any) -> None:
    config, connection, state, http = setup
    a = token_provider(db, config, connection, QBO, http)
    b = token_provider(db, config, connection, QBO, http)
    old = a.access_token()
    new = a.refresh_after_rejection(old)
    assert new != old and state.refreshes == 2
    # b saw the same 401 for the old token: it picks up a's refresh instead of refreshing
    assert b.refresh_after_rejection(old) == new and state.refreshes == 2


def test_refresh_margin_and_daemon_sweep(db: Database, setup: Any) -> None:
    config, connection, state, http = setup
    state.expires_in = 200  # inside the 300 s margin: every use refreshes
    provider = token_provider(db, config, connection, QBO, http)
    provider.access_token()
    provider.access_token()
    assert state.refreshes == 2
    state.expires_in = 3600
    assert refresh_if_due(db, config, connection, QBO, http, ahead_seconds=600) is True
    assert refresh_if_due(db, config, connection, QBO, http, ahead_seconds=600) is False
    assert state.refreshes == 3


def test_invalid_grant_marks_token_expired_and_stops(db: Database, setup: Any) -> None:
    config, connection, state, http = setup
    state.refresh_token = "RT1-revoked-in-quickbooks"  # the user disconnected the app
    state.previous_refresh_token = None
    with pytest.raises(AuthError, match="refused by the provider.*invalid_grant"):
        token_provider(db, config, connection, QBO, http).access_token()
    row = _row(db)
    assert row.connection_status == "token_expired" and row.status == "token_expired"
    assert "invalid_grant" in row.status_reason and row.c_reason == row.status_reason
    calls = state.invalid_grants
    with pytest.raises(AuthError, match="token_expired"):
        token_provider(db, config, connection, QBO, http).access_token()
    assert state.invalid_grants == calls  # no further attempt at the provider
    # the status command's query shows it
    from blippsync.status import collect_status

    attention = collect_status(db)["needs_attention"]
    assert [c["status"] for c in attention] == ["token_expired"]


def test_server_errors_are_retried_with_backoff_and_never_mark(db: Database,
                                                              setup: Any) -> None:
    config, connection, state, http = setup
    refresher = refresher_for(db, config, connection, QBO, http)
    waits: list[float] = []
    refresher.sleep = waits.append
    state.fail_next_refreshes = 2
    assert refresher.refresh().access_token in state.access_tokens
    assert len(waits) == 2 and waits[1] > waits[0]
    state.fail_next_refreshes = 10
    with pytest.raises(TransientError, match="token refresh.*503.*gave up after 3 tries"):
        refresher.refresh(force=True)
    assert _row(db).connection_status == "connected"


def test_lost_response_recovers_when_provider_honours_previous_token(
        db: Database, setup: Any, caplog: pytest.LogCaptureFixture) -> None:
    config, connection, state, http = setup
    state.grace_previous = True  # Intuit keeps the previous token valid for a while
    state.drop_next_refresh = True
    refresher = refresher_for(db, config, connection, QBO, http)
    refresher.sleep = lambda s: None
    with caplog.at_level(logging.WARNING, "blippsync.vault"):
        tokens = refresher.refresh()
    assert tokens.access_token in state.access_tokens
    assert "answer was lost" in caplog.text and "recovered" in caplog.text
    ring = load_keyring(config)
    row = _row(db)
    assert ring.decrypt(row.refresh_token, _qbo(row, "refresh_token")) == state.refresh_token
    assert row.connection_status == "connected"


def test_lost_response_with_strict_rotation_marks_and_says_why(db: Database, setup: Any) -> None:
    config, connection, state, http = setup
    state.drop_next_refresh = True  # rotated at the provider, answer lost, reuse refused
    refresher = refresher_for(db, config, connection, QBO, http)
    refresher.sleep = lambda s: None
    with pytest.raises(AuthError, match="answer was lost in transit"):
        refresher.refresh()
    row = _row(db)
    assert row.connection_status == "token_expired"
    assert "rotated the refresh token but its answer was lost" in row.status_reason


def test_previous_refresh_token_gets_one_retry(db: Database, setup: Any) -> None:
    config, connection, state, http = setup
    ring = load_keyring(config)
    current = state.refresh_token
    with db.begin() as conn:  # a stale writer left a bad current token; previous is good
        conn.execute(sa.text("UPDATE public.integrations_quickbooks SET refresh_token = :r, "
                             "previous_refresh_token = :p"),
                     {"r": ring.encrypt("RT1-garbage-token-value",
                                        _qbo(connection, "refresh_token")),
                      "p": ring.encrypt(current, _qbo(connection, "previous_refresh_token"))})
    token = token_provider(db, config, connection, QBO, http).access_token()
    assert token in state.access_tokens and state.invalid_grants == 1
    row = _row(db)
    assert ring.decrypt(row.refresh_token, _qbo(row, "refresh_token")) == state.refresh_token


def test_wrong_client_secret_is_a_config_error_not_a_dead_connection(db: Database,
                                                                     setup: Any) -> None:
    config, connection, state, http = setup
    bad = config.with_values(quickbooks__client_secret="not-the-secret")
    with pytest.raises(ConfigError, match="client id or secret"):
        token_provider(db, bad, connection, QBO, http).access_token()
    assert _row(db).connection_status == "connected"


def test_disconnect_revokes_forgets_and_marks(db: Database, setup: Any) -> None:
    config, connection, state, http = setup
    rt = state.refresh_token
    assert disconnect(db, config, connection, QBO, http) == "token revoked at the provider"
    assert state.revoked == [rt]
    row = _row(db)
    assert row.connection_status == "disconnected" and row.status == "disconnected"
    assert row.refresh_token is None and row.access_token is None


def test_connector_settings_layering(setup: Any) -> None:
    config, connection, state, http = setup
    merged = connector_settings(config, "quickbooks", {"minor_version": 80})
    assert merged["client_id"] == "fake-client-id" and merged["minor_version"] == 80


# --- plugin connectors: connections.credentials -----------------------------------------


class _PluginOAuth:
    name = "tinyoauth"

    def __init__(self, token_url: str):
        self.token_url = token_url

    def oauth_spec(self, settings: Any) -> Any:
        from blippsync.connector import OAuthClientSpec

        return OAuthClientSpec(token_url=self.token_url, authorize_url="",
                               client_id="fake-client-id",
                               client_secret="fake-client-secret-0123456789")

    def token_expiry(self, response: Any, now: Any) -> Any:
        return QBO.token_expiry(response, now)


def test_credentials_store_for_plugin_connectors(tmp_path: Path, database_url: str,
                                                 db: Database, intuit: Any) -> None:
    url, state = intuit
    config = qbo_config(tmp_path, database_url, url)
    from blippsync.businesses import add_business

    business = add_business(db, name="B", owner_email="o@b.test", timezone="UTC")
    connection = store_tokens(db, config, business, "tinyoauth", "acct-1", state.refresh_token)
    with httpx.Client() as http:
        token = token_provider(db, config, connection, _PluginOAuth(f"{url}/token"),
                               http).access_token()
    assert token in state.access_tokens
    with db.connect() as conn:
        creds, prev = conn.execute(sa.text("SELECT credentials, previous_credentials FROM "
                                           "public.connections WHERE id = :id"),
                                   {"id": connection.id}).one()
    assert creds.startswith("bsv2:") and prev.startswith("bsv2:")
    assert state.refresh_token in load_keyring(config).decrypt(
        creds, sealed_at("connections", "credentials", business, connection.id))


# --- rotation ----------------------------------------------------------------------------


def test_rotate_reencrypts_every_store_resumably(tmp_path: Path, database_url: str,
                                                 db: Database, setup: Any) -> None:
    config, connection, state, http = setup
    token_provider(db, config, connection, QBO, http).access_token()
    from blippsync.businesses import add_business

    for i in range(5):  # more rows than one batch
        b = add_business(db, name=f"B{i}", owner_email=f"o{i}@b.test", timezone="UTC")
        store_tokens(db, config, b, "quickbooks", f"realm-{i}", f"RT1-token-{i:06d}")
        store_tokens(db, config, b, "jobber", f"acct-{i}", f"jobber-token-{i:06d}")
        store_tokens(db, config, b, "tinyoauth", f"acct-{i}", f"plugin-token-{i:06d}")
    new_ring = keyring_from_strings([KEY_B, KEY_A], "test")
    report = rotate_keys(db, new_ring, batch_rows=2)
    assert report.reencrypted["integrations_quickbooks"] == 3 + 5  # access, refresh, previous
    assert report.reencrypted["integrations_jobber"] == 5
    assert report.reencrypted["connections"] == 5
    again = rotate_keys(db, new_ring)
    assert sum(again.reencrypted.values()) == 0  # resumable: nothing left to do
    only_b = keyring_from_strings([KEY_B], "test")
    with db.connect() as conn:
        values = conn.execute(sa.text(
            "SELECT 'integrations_quickbooks', 'refresh_token', business_id, business_id, "
            "refresh_token FROM public.integrations_quickbooks UNION ALL "
            "SELECT 'integrations_jobber', 'refresh_token', business_id, business_id, "
            "refresh_token FROM public.integrations_jobber UNION ALL "
            "SELECT 'connections', 'credentials', business_id, id, credentials "
            "FROM public.connections WHERE credentials IS NOT NULL")).all()
        assert all(only_b.decrypt(v[4], sealed_at(*v[:4])) for v in values)
