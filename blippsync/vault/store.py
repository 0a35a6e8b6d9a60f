"""Where a connection's tokens live, behind one interface.

QuickBooks and Jobber keep them in the spec's integrations_* tables (the web app writes
those too; one row per business); every other OAuth connector keeps an encrypted JSON
object in connections.credentials. Values are sealed here on the way in and opened on
the way out, so nothing above this module sees a ciphertext and nothing below a
plaintext. Every write of tokens also mirrors expiry and status onto the connections
row, which the daemon and `blippsync status` read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa

from blippsync.connections import Connection
from blippsync.vault.keys import KeyRing, SealedAt

_LOCK = sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))")
_MIRROR = sa.text("""UPDATE public.connections SET token_expires_at = :expires_at,
                         status = 'connected', status_reason = NULL WHERE id = :id""")
_MARK_CONNECTION = sa.text("""UPDATE public.connections
                              SET status = :status, status_reason = :reason WHERE id = :id""")


@dataclass(frozen=True)
class Tokens:
    """A connection's tokens in plaintext (never printed: the repr hides them)."""

    access_token: str | None = field(repr=False)
    refresh_token: str | None = field(repr=False)
    previous_refresh_token: str | None = field(default=None, repr=False)
    expires_at: datetime | None = None
    refresh_expires_at: datetime | None = None
    status: str = "connected"
    status_reason: str | None = None


# How each sealed table names the row a ciphertext is bound to: integrations_* hold one row
# per business (the business is the row's key), connections one per connection.
ROW_KEY_COLUMN = {"integrations_quickbooks": "business_id", "integrations_jobber": "business_id",
                  "connections": "id"}


def sealed_at(table: str, column: str, business_id: object, row_key: object) -> SealedAt:
    return SealedAt(table=table, column=column, business_id=str(business_id), row=str(row_key))


def _seal(ring: KeyRing, value: str | None, at: SealedAt) -> str | None:
    return ring.encrypt(value, at) if value else None


def _open(ring: KeyRing, value: str | None, at: SealedAt) -> str | None:
    where = f"{at.table}.{at.column} of business {at.business_id}"
    return ring.decrypt(value, at, where=where) if value else None


class TokenStore(Protocol):
    def lock(self, conn: sa.Connection, connection: Connection) -> None:
        """Serialise refreshes of this connection across processes (transaction-scoped)."""

    def read(self, conn: sa.Connection, connection: Connection, ring: KeyRing) -> Tokens | None: ...

    def save(self, conn: sa.Connection, connection: Connection, ring: KeyRing,
             tokens: Tokens) -> None:
        """Store the pair (sealed) and mark the connection connected."""

    def mark(self, conn: sa.Connection, connection: Connection, status: str,
             reason: str | None) -> None:
        """token_expired / disconnected (which also forgets the tokens), with why."""


@dataclass(frozen=True)
class IntegrationStore:
    """integrations_quickbooks / integrations_jobber: one row per business."""

    table: str  # a constant, never user input
    account_column: str
    has_refresh_expiry: bool

    def _sql(self, body: str) -> sa.TextClause:
        return sa.text(body.replace("{t}", f"public.{self.table}")
                       .replace("{account}", self.account_column))

    def lock(self, conn: sa.Connection, connection: Connection) -> None:
        conn.execute(_LOCK, {"key": f"vault:{self.table}:{connection.business_id}"})

    def _at(self, connection: Connection, column: str) -> SealedAt:
        return sealed_at(self.table, column, connection.business_id, connection.business_id)

    def read(self, conn: sa.Connection, connection: Connection, ring: KeyRing) -> Tokens | None:
        row = conn.execute(self._sql(
            """SELECT access_token, refresh_token, previous_refresh_token, token_expires_at,
                      connection_status, status_reason
               FROM {t} WHERE business_id = :b"""), {"b": connection.business_id}).one_or_none()
        if row is None:
            return None
        return Tokens(access_token=_open(ring, row.access_token, self._at(connection,
                                                                          "access_token")),
                      refresh_token=_open(ring, row.refresh_token, self._at(connection,
                                                                            "refresh_token")),
                      previous_refresh_token=_open(ring, row.previous_refresh_token, self._at(
                          connection, "previous_refresh_token")),
                      expires_at=row.token_expires_at, status=row.connection_status,
                      status_reason=row.status_reason)

    def save(self, conn: sa.Connection, connection: Connection, ring: KeyRing,
             tokens: Tokens) -> None:
        extra = ", refresh_token_expires_at = :rx" if self.has_refresh_expiry else ""
        conn.execute(self._sql(
            f"""INSERT INTO {{t}} (business_id, {{account}}, access_token, refresh_token,
                                  previous_refresh_token, token_expires_at, connection_status)
                VALUES (:b, :acct, :a, :r, :p, :x, 'connected')
                ON CONFLICT (business_id) DO UPDATE SET {{account}} = EXCLUDED.{{account}},
                    access_token = :a, refresh_token = :r, previous_refresh_token = :p,
                    token_expires_at = :x, connection_status = 'connected',
                    status_reason = NULL{extra}"""),
            {"b": connection.business_id, "acct": connection.account_id or None,
             "a": _seal(ring, tokens.access_token, self._at(connection, "access_token")),
             "r": _seal(ring, tokens.refresh_token, self._at(connection, "refresh_token")),
             "p": _seal(ring, tokens.previous_refresh_token,
                        self._at(connection, "previous_refresh_token")),
             "x": tokens.expires_at,
             "rx": tokens.refresh_expires_at})
        conn.execute(_MIRROR, {"id": connection.id, "expires_at": tokens.expires_at})

    def mark(self, conn: sa.Connection, connection: Connection, status: str,
             reason: str | None) -> None:
        clear = (", access_token = NULL, refresh_token = NULL, previous_refresh_token = NULL"
                 if status == "disconnected" else "")
        conn.execute(self._sql(f"""UPDATE {{t}} SET connection_status = :s,
                                       status_reason = :r{clear} WHERE business_id = :b"""),
                     {"b": connection.business_id, "s": status, "r": reason})
        conn.execute(_MARK_CONNECTION, {"id": connection.id, "status": status, "reason": reason})


def connection_sealed_at(connection: Connection, column: str) -> SealedAt:
    """Where a value sealed into connections.<column> of this connection lives."""
    return sealed_at("connections", column, connection.business_id, connection.id)


@dataclass(frozen=True)
class CredentialsStore:
    """connections.credentials: one sealed JSON object {access_token, refresh_token, ...};
    previous_credentials holds the object before the last refresh."""

    def lock(self, conn: sa.Connection, connection: Connection) -> None:
        conn.execute(_LOCK, {"key": f"vault:connections:{connection.id}"})

    def read(self, conn: sa.Connection, connection: Connection, ring: KeyRing) -> Tokens | None:
        row = conn.execute(sa.text(
            """SELECT credentials, previous_credentials, token_expires_at, status, status_reason
               FROM public.connections WHERE id = :id"""), {"id": connection.id}).one_or_none()
        if row is None or row.credentials is None:
            return None
        at, previous_at = (connection_sealed_at(connection, "credentials"),
                           connection_sealed_at(connection, "previous_credentials"))
        current = json.loads(_open(ring, row.credentials, at) or "{}")
        previous = json.loads(_open(ring, row.previous_credentials, previous_at) or "{}")
        return Tokens(access_token=current.get("access_token"),
                      refresh_token=current.get("refresh_token"),
                      previous_refresh_token=previous.get("refresh_token"),
                      expires_at=row.token_expires_at, status=row.status,
                      status_reason=row.status_reason)

    def save(self, conn: sa.Connection, connection: Connection, ring: KeyRing,
             tokens: Tokens) -> None:
        current = {"access_token": tokens.access_token, "refresh_token": tokens.refresh_token}
        previous = ({"refresh_token": tokens.previous_refresh_token}
                    if tokens.previous_refresh_token else None)
        conn.execute(sa.text(
            """UPDATE public.connections SET credentials = :c, previous_credentials = :p,
                   token_expires_at = :x, status = 'connected', status_reason = NULL
               WHERE id = :id"""),
            {"id": connection.id,
             "c": ring.encrypt(json.dumps(current),
                               connection_sealed_at(connection, "credentials")),
             "p": ring.encrypt(json.dumps(previous),
                               connection_sealed_at(connection, "previous_credentials"))
             if previous else None,
             "x": tokens.expires_at})

    def mark(self, conn: sa.Connection, connection: Connection, status: str,
             reason: str | None) -> None:
        clear = (", credentials = NULL, previous_credentials = NULL"
                 if status == "disconnected" else "")
        conn.execute(sa.text(f"""UPDATE public.connections SET status = :status,
                                    status_reason = :reason{clear} WHERE id = :id"""),
                     {"id": connection.id, "status": status, "reason": reason})


INTEGRATION_STORES: dict[str, IntegrationStore] = {
    "quickbooks": IntegrationStore("integrations_quickbooks", "realm_id", has_refresh_expiry=True),
    "jobber": IntegrationStore("integrations_jobber", "account_id", has_refresh_expiry=False),
}


def store_for(connector_name: str) -> IntegrationStore | CredentialsStore:
    """The store holding this connector's tokens."""
    return INTEGRATION_STORES.get(connector_name) or CredentialsStore()
