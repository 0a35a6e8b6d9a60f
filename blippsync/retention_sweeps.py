"""What the daily retention sweeps share: the settings check, and a bookmark per sweep
(`blippsync.retention_sweeps`) so that each day's sweep starts where the last one ended
instead of walking everything it kept before."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from blippsync.config import Config
from blippsync.errors import ConfigError
from blippsync.settings import retention_problems

_SWEPT_UNTIL = sa.text("SELECT swept_until FROM blippsync.retention_sweeps WHERE name = :name")
_MARK_SWEPT = sa.text("""
    INSERT INTO blippsync.retention_sweeps (name, swept_until) VALUES (:name, :until)
    ON CONFLICT (name) DO UPDATE
    SET swept_until = greatest(blippsync.retention_sweeps.swept_until, excluded.swept_until),
        updated_at = now()
""")


def check_retention_settings(config: Config) -> None:
    """Refuse settings that would delete what must stay (see settings.retention_problems);
    load_config refuses them too, this guards a Config built another way."""
    if problems := retention_problems(config.values):
        raise ConfigError("; ".join(problems))


def swept_until(conn: sa.Connection, sweep: str) -> datetime | None:
    """Where the sweep named `sweep` stopped last time (None: it never ran)."""
    value: datetime | None = conn.execute(_SWEPT_UNTIL, {"name": sweep}).scalar()
    return value


def mark_swept(conn: sa.Connection, sweep: str, until: datetime) -> None:
    """Everything before `until` was looked at; a bookmark never moves back."""
    conn.execute(_MARK_SWEPT, {"name": sweep, "until": until})
