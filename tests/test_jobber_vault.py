"""Jobber through the token vault and the sync engine, on a real PostgreSQL.

The fake's token endpoint rotates the refresh token on every refresh and treats any
reuse as a lockout (the grant dies), as Jobber does for apps created after 2024-01-02.
"""

from __future__ import annotations

import multiprocessing
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fakes.jobber_fake import (
    ACCOUNT_ID,
    BASE_TIME,
    JobberFake,
    make_client,
    make_invoice,
    make_job,
)

from blippsync.businesses import add_business
from blippsync.config import Config, load_config
from blippsync.connections import get_connection
from blippsync.database import Database
from blippsync.sync import SyncOptions, sync_connection
from blippsync.vault import load_keyring, refresher_for, store_tokens
from blippsync.vault.store import store_for
from connectors.jobber import JobberConnector

KEY = "hYm5G0r0q2bU0m7x3q4m9mQy6Yk1bq7cG1mF3w8Zs2A"  # test-only key
PROCESSES = 8
ROUNDS = 200


def jobber_config(tmp_path: Path, database_url: str, fake: JobberFake) -> Config:
    path = tmp_path / "config.toml"
    path.write_text("\n".join([
        "[database]", f'url = "{database_url}"', "pool_size = 2",
        "[encryption]", f'keys = ["{KEY}"]',
        "[jobber]", f'client_id = "{fake.client_id}"', f'client_secret = "{fake.client_secret}"',
        f'graphql_url = "{fake.graphql_url}"', f'token_url = "{fake.token_url}"']) + "\n")
    return load_config(path, environ={})


def connect(db: Database, config: Config, fake: JobberFake) -> Any:
    business = add_business(db, name="Green Lawns", owner_email="owner@greenlawns.test",
                            timezone="America/Chicago")
    return store_tokens(db, config, business, "jobber", ACCOUNT_ID, fake.refresh_token)


def _stored(db: Database, config: Config, connection: Any) -> Any:
    with db.connect() as conn:
        return store_for("jobber").read(conn, connection, load_keyring(config))


def test_sync_through_vault_and_engine_stores_customers_and_deduplicated_events(
        tmp_path: Path, database_url: str, db: Database) -> None:
    now = BASE_TIME + timedelta(days=2)
    clients = [make_client(i) for i in range(1, 121)]
    jobs = [make_job(i, clients[i], now - timedelta(hours=i)) for i in range(1, 6)]
    invoices = [make_invoice(i, clients[i], now - timedelta(hours=i)) for i in range(1, 4)]
    with JobberFake(clients=clients, jobs=jobs, invoices=invoices) as fake, \
            httpx.Client(timeout=5) as http:
        config = jobber_config(tmp_path, database_url, fake)
        connection = connect(db, config, fake)
        first = sync_connection(db, config, connection, JobberConnector(),
                                SyncOptions(now=now), http=http)
        assert first.ok, first.error
        assert fake.refreshes == 1  # no access token stored yet: one refresh, then reused
        again = sync_connection(db, config, get_connection_(db, connection.id),
                                JobberConnector(), SyncOptions(now=now, full=True), http=http)
        assert again.ok, again.error
        assert fake.refreshes == 1
        stored = _stored(db, config, connection)
        assert stored.refresh_token == fake.refresh_token
    assert first.counts.created == 120
    assert first.counts.emitted + first.counts.historical == 8
    assert again.counts.duplicate == 8 and again.counts.created == 0
    with db.connect() as conn:
        events = conn.execute(sa.text(
            "SELECT dedupe_key, external_customer_id FROM public.trigger_events "
            "WHERE source = 'jobber' ORDER BY dedupe_key")).all()
        row = conn.execute(sa.text("SELECT access_token, refresh_token, token_expires_at "
                                   "FROM public.integrations_jobber")).one()
        review = conn.execute(sa.text(
            "SELECT count(*) FROM public.customers WHERE source = 'jobber'")).scalar_one()
    assert len(events) == 8 and all(k.startswith(f"jobber:{ACCOUNT_ID}:") for k, _ in events)
    assert review == 120
    assert row.access_token.startswith("bsv2:") and row.refresh_token.startswith("bsv2:")
    assert row.token_expires_at > datetime.now(UTC)  # from the JWT exp, no expires_in


def get_connection_(db: Database, connection_id: uuid.UUID) -> Any:
    with db.connect() as conn:
        return get_connection(conn, connection_id)


def _race_worker(config_path: str, connection_id: str, rounds: int, start: Any) -> int:
    """One process: `rounds` times, read the stored access token and report it rejected,
    as a sync meeting a 401 would. The vault must refresh only when nobody else has."""
    config = load_config(config_path, environ={})
    db = Database(config["database.url"], pool_size=1)
    try:
        connection = get_connection_(db, uuid.UUID(connection_id))
        with httpx.Client(timeout=10) as http:
            refresher = refresher_for(db, config, connection, JobberConnector(), http)
            start.wait()
            for _ in range(rounds):
                current = refresher.read()
                refresher.refresh(rejected=current.access_token if current else None)
        return 0
    finally:
        db.dispose()


@pytest.mark.slow
def test_rotation_race_8_processes_200_rounds_zero_lockouts(
        tmp_path: Path, database_url: str, db: Database) -> None:
    with JobberFake() as fake:
        config = jobber_config(tmp_path, database_url, fake)
        connection = connect(db, config, fake)
        spawn = multiprocessing.get_context("spawn")
        start = spawn.Manager().Event()
        with spawn.Pool(PROCESSES) as pool:
            results = [pool.apply_async(_race_worker, (str(config.path), str(connection.id),
                                                       ROUNDS, start))
                       for _ in range(PROCESSES)]
            start.set()
            assert [r.get(timeout=240) for r in results] == [0] * PROCESSES
        print(f"{PROCESSES}x{ROUNDS} rounds: {fake.refreshes} rotations, "
              f"{fake.reuse_rejections} rejected reuses")
        assert fake.reuse_rejections == 0 and not fake.locked_out
        assert fake.refreshes >= ROUNDS  # every round of the first process saw a rotation
        stored = _stored(db, config, connection)
        assert stored.status == "connected"
        assert stored.refresh_token == fake.refresh_token  # the latest token is the stored one


class _StaticTokens:
    def __init__(self, token: str) -> None:
        self.token = token

    def access_token(self) -> str:
        return self.token

    def invalidate(self, token: str) -> None:  # pragma: no cover - not reached
        pass


def _jwt(claims: dict[str, Any]) -> str:
    import base64
    import json

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'HS256'})}.{part(claims)}.c2ln"


@pytest.mark.parametrize("token_account, refused", [(430114, False), (999001, True)])
def test_a_token_of_another_jobber_account_is_refused(token_account: int, refused: bool) -> None:
    """Jobber's URL names no account: the token's account_id claim must be the connection's
    (EncodedId base64("gid://Jobber/Account/430114"), as in Jobber's own fixtures)."""
    import base64

    from blippsync.errors import AuthError
    from blippsync.testing.contract import make_context

    encoded = base64.b64encode(b"gid://Jobber/Account/430114").decode()
    token = _jwt({"sub": 1077988, "account_id": token_account, "exp": 1655140617})
    ctx = make_context(account_id=encoded, tokens=_StaticTokens(token))
    connector = JobberConnector()
    if refused:
        with pytest.raises(AuthError, match="belongs to account 999001"):
            connector.account_id(ctx, gql=None)  # type: ignore[arg-type]
    else:
        assert connector.account_id(ctx, gql=None) == encoded  # type: ignore[arg-type]
