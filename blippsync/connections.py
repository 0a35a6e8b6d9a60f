"""Connections: a business linked to a connector (and, for OAuth ones, a remote account).

The row in public.connections carries the connector's cursor, health and lease; it is
created on first use and never deleted by the daemon (disconnecting marks it).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from blippsync.errors import NotFoundError

# The one rule for "this connection needs its owner", shared by `blippsync status` and
# /healthz (an SQL condition over public.connections AS c): it is not connected (token
# expired or refused, the app disconnected at the provider...), or it has been failing for
# a day.
NEEDS_HUMAN_SQL = """(c.status <> 'connected'
    OR (c.consecutive_failures > 0
        AND coalesce(c.last_success_at, c.created_at) < now() - interval '1 day'))"""

_COLUMNS = """id, business_id, connector, account_id, status, status_reason, settings, cursor,
              last_success_at, last_sync_at, token_expires_at"""
_ENSURE_SOURCE = sa.text("INSERT INTO public.customer_sources (name) VALUES (:name) "
                         "ON CONFLICT (name) DO NOTHING")
_ENSURE = sa.text(f"""
    INSERT INTO public.connections (business_id, connector, account_id, settings)
    VALUES (:business_id, :connector, :account_id, CAST(:settings AS jsonb))
    ON CONFLICT (business_id, connector, account_id) DO UPDATE
        SET settings = CASE WHEN CAST(:settings AS jsonb) = '{{}}'::jsonb
                            THEN public.connections.settings
                            ELSE public.connections.settings || CAST(:settings AS jsonb) END
    RETURNING {_COLUMNS}
""")
_GET = sa.text(f"SELECT {_COLUMNS} FROM public.connections WHERE id = :id")
_FIND = sa.text(f"""SELECT {_COLUMNS} FROM public.connections
                    WHERE business_id = :business_id AND connector = :connector
                    ORDER BY account_id""")
_LIST = sa.text(f"""SELECT {_COLUMNS} FROM public.connections
                    WHERE (CAST(:business_id AS uuid) IS NULL OR business_id = :business_id)
                      AND (CAST(:connector AS text) IS NULL OR connector = :connector)
                    ORDER BY business_id, connector, account_id""")
_SET_STATUS = sa.text("""UPDATE public.connections SET status = :status, status_reason = :reason
                         WHERE id = :id""")


@dataclass(frozen=True)
class Connection:
    id: uuid.UUID
    business_id: uuid.UUID
    connector: str
    account_id: str
    status: str
    status_reason: str | None
    settings: dict[str, Any]
    cursor: dict[str, Any] | None
    last_success_at: datetime | None
    last_sync_at: datetime | None
    token_expires_at: datetime | None


def ensure_source(conn: sa.Connection, name: str) -> None:
    """Make `name` a valid customers.source / trigger source (see customer_sources)."""
    conn.execute(_ENSURE_SOURCE, {"name": name})


def ensure_connection(conn: sa.Connection, business_id: uuid.UUID, connector: str,
                      account_id: str = "", settings: dict[str, Any] | None = None) -> Connection:
    """The connection row, created if missing; `settings` are merged into stored ones."""
    ensure_source(conn, connector)
    row = conn.execute(_ENSURE, {"business_id": business_id, "connector": connector,
                                 "account_id": account_id,
                                 "settings": json.dumps(settings or {})}).one()
    return Connection(**row._mapping)


def get_connection(conn: sa.Connection, connection_id: uuid.UUID) -> Connection:
    row = conn.execute(_GET, {"id": connection_id}).one_or_none()
    if row is None:
        raise NotFoundError(f"no connection with id {connection_id}")
    return Connection(**row._mapping)


def find_connections(conn: sa.Connection, business_id: uuid.UUID, connector: str
                     ) -> list[Connection]:
    return [Connection(**r._mapping) for r in conn.execute(
        _FIND, {"business_id": business_id, "connector": connector})]


def connection_for_run(conn: sa.Connection, business_id: uuid.UUID, connector: str, *,
                       dry_run: bool) -> Connection:
    """The business's connection to `connector` (one per business, like csv and manual),
    created on first use, except in a dry run, which writes nothing: then a connection
    that is not stored stands in (an id of its own for the pass's lock, no cursor)."""
    if not dry_run:
        return ensure_connection(conn, business_id, connector)
    stored = [c for c in find_connections(conn, business_id, connector) if not c.account_id]
    return stored[0] if stored else Connection(
        id=uuid.uuid4(), business_id=business_id, connector=connector, account_id="",
        status="connected", status_reason=None, settings={}, cursor=None,
        last_success_at=None, last_sync_at=None, token_expires_at=None)


def list_connections(conn: sa.Connection, business_id: uuid.UUID | None = None,
                     connector: str | None = None) -> list[Connection]:
    return [Connection(**r._mapping) for r in conn.execute(
        _LIST, {"business_id": business_id, "connector": connector})]


def set_status(conn: sa.Connection, connection_id: uuid.UUID, status: str,
               reason: str | None = None) -> None:
    """connected | token_expired | disconnected, with the reason a human will read."""
    conn.execute(_SET_STATUS, {"id": connection_id, "status": status, "reason": reason})
