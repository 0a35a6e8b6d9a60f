"""Periodic tasks that run once per period across every replica (reconciliation, retention).

Each replica's scheduler asks on its own clock; the row in blippsync.daemon_tasks decides
who runs: a replica claims the task only when its period has passed since the last
finish and nobody holds an unexpired lease on it. A replica that dies mid-task lets the
lease expire, and the next asker runs it again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

from blippsync.database import Database

ENSURE_SQL = sa.text("INSERT INTO blippsync.daemon_tasks (name) VALUES (:name) "
                     "ON CONFLICT (name) DO NOTHING")
CLAIM_SQL = sa.text("""
UPDATE blippsync.daemon_tasks
SET lease_owner = :owner, lease_expires_at = now() + make_interval(secs => :lease_seconds),
    last_started_at = now()
WHERE name = :name
  AND (lease_expires_at IS NULL OR lease_expires_at < now())
  AND (last_finished_at IS NULL
       OR last_finished_at <= now() - make_interval(secs => :period_seconds))
RETURNING name
""")
FINISH_SQL = sa.text("""
UPDATE blippsync.daemon_tasks
SET lease_owner = NULL, lease_expires_at = NULL, last_error = :error,
    last_finished_at = CASE WHEN CAST(:error AS text) IS NULL THEN now() ELSE last_finished_at END
WHERE name = :name AND lease_owner = :owner
""")


def run_once_per_period(db: Database, owner: str, name: str, *, period_seconds: float,
                        lease_seconds: float, work: Callable[[], Any]) -> bool:
    """Run `work` if this replica wins the task for this period; return whether it ran."""
    with db.begin() as conn:
        conn.execute(ENSURE_SQL, {"name": name})
        won = conn.execute(CLAIM_SQL, {"name": name, "owner": owner,
                                       "lease_seconds": lease_seconds,
                                       "period_seconds": period_seconds}).first()
    if won is None:
        return False
    error: str | None = None
    try:
        work()
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:2000]
        raise
    finally:
        with db.begin() as conn:
            conn.execute(FINISH_SQL, {"name": name, "owner": owner, "error": error})
    return True
