"""Who is running: one row per daemon in blippsync.daemons, touched on every tick.

`status` and /healthz read it; nothing depends on it for correctness (leases do that).
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from typing import Any

import sqlalchemy as sa

from blippsync import __version__
from blippsync.database import Database

START_SQL = sa.text("""
INSERT INTO blippsync.daemons (id, hostname, pid, version, details)
VALUES (:id, :hostname, :pid, :version, CAST(:details AS jsonb))
ON CONFLICT (id) DO UPDATE SET hostname = EXCLUDED.hostname, pid = EXCLUDED.pid,
    version = EXCLUDED.version, started_at = now(), last_tick_at = now(), stopped_at = NULL,
    details = EXCLUDED.details
""")
TICK_SQL = sa.text("UPDATE blippsync.daemons SET last_tick_at = now() WHERE id = :id")
STOP_SQL = sa.text("UPDATE blippsync.daemons SET stopped_at = now() WHERE id = :id")
RETENTION_SQL = sa.text("""
DELETE FROM blippsync.daemons
WHERE coalesce(stopped_at, last_tick_at) < now() - make_interval(days => :days)
""")


def new_daemon_id(configured: str = "") -> str:
    """The configured id, else host-pid-random (unique even when pids repeat in containers)."""
    if configured:
        return configured
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


def started(db: Database, daemon_id: str, details: dict[str, Any]) -> None:
    with db.begin() as conn:
        conn.execute(START_SQL, {"id": daemon_id, "hostname": socket.gethostname(),
                                 "pid": os.getpid(), "version": __version__,
                                 "details": json.dumps(details, default=str)})


def tick(db: Database, daemon_id: str) -> None:
    with db.begin() as conn:
        conn.execute(TICK_SQL, {"id": daemon_id})


def stopped(db: Database, daemon_id: str) -> None:
    with db.begin() as conn:
        conn.execute(STOP_SQL, {"id": daemon_id})



def delete_old(db: Database, days: int) -> int:
    with db.begin() as conn:
        return conn.execute(RETENTION_SQL, {"days": days}).rowcount
