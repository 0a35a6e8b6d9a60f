"""The non-OAuth secrets a connector declares (`credentials = ("api_key",)`).

Each one comes from the connection's vault entry (stored sealed in
connections.credentials by `blippsync credentials set`), else from the connector's
settings (`[plugins.<name>] api_key = { "$env" = "..." }`); the sync engine hands them to
the connector as `ctx.credentials`. A missing one stops the pass with a message saying
where to put it, before the connector runs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping

import sqlalchemy as sa

from blippsync.config import Config
from blippsync.connections import Connection, ensure_connection
from blippsync.connector import Connector, Settings, declared_credentials
from blippsync.database import Database
from blippsync.errors import ConfigError
from blippsync.redaction import register_secret
from blippsync.vault.keys import KeyRing, load_keyring
from blippsync.vault.store import connection_sealed_at

_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
_READ = sa.text("SELECT credentials FROM public.connections WHERE id = :id")
_WRITE = sa.text("""UPDATE public.connections SET credentials = :sealed,
                        status = 'connected', status_reason = NULL WHERE id = :id""")


def store_credentials(db: Database, config: Config, business_id: uuid.UUID,
                      connector_name: str, account_id: str,
                      values: Mapping[str, str]) -> Connection:
    """Seal `values` into the connection's vault entry (other names stored there are kept);
    the connection is created when the business has none for this account."""
    ring = load_keyring(config)
    with db.begin() as conn:
        connection = ensure_connection(conn, business_id, connector_name, account_id)
        conn.execute(_LOCK, {"key": f"vault:connections:{connection.id}"})
        stored = _read(conn, connection, ring)
        sealed = ring.encrypt(json.dumps({**stored, **values}),
                              connection_sealed_at(connection, "credentials"))
        conn.execute(_WRITE, {"id": connection.id, "sealed": sealed})
    return connection


def connector_credentials(db: Database, config: Config, connection: Connection,
                          connector: Connector, settings: Settings) -> dict[str, str]:
    """The values of the credentials `connector` declares, for `ctx.credentials`."""
    names = declared_credentials(connector)
    if not names:
        return {}
    with db.connect() as conn:
        sealed = conn.execute(_READ, {"id": connection.id}).scalar()
    stored = _open(load_keyring(config), sealed, connection) if sealed else {}
    found: dict[str, str] = {}
    for name in names:
        value = stored.get(name) or settings.get(name)
        if isinstance(value, str) and value:
            register_secret(value)
            found[name] = value
    missing = [name for name in names if name not in found]
    if missing:
        raise ConfigError(
            f"connector {connector.name!r} has no {', '.join(missing)} credential. Put one "
            f"in the vault with "
            f"`blippsync credentials set {connector.name} {missing[0]} --business "
            f"{connection.business_id}` (the value read from standard input), or "
            f"configure it under [plugins.{connector.name}] (as {{ \"$env\" = NAME }} or a $file)")
    return found


def _read(conn: sa.Connection, connection: Connection, ring: KeyRing) -> dict[str, str]:
    sealed = conn.execute(_READ, {"id": connection.id}).scalar()
    return _open(ring, sealed, connection) if sealed else {}


def _open(ring: KeyRing, sealed: str, connection: Connection) -> dict[str, str]:
    values = json.loads(ring.decrypt(sealed, connection_sealed_at(connection, "credentials"),
                                     where=f"connections.credentials of connection "
                                           f"{connection.id}"))
    return {k: v for k, v in values.items() if isinstance(v, str)}
