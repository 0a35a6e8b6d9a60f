"""Applying the versioned SQL files in `migrations/` (NNNN_name.sql), in order, once each.

A ledger (`blippsync.schema_migrations`) records every applied file with its checksum:
an applied file that was edited since is an error naming it. An advisory lock makes
concurrent migrators safe: the second waits, then finds nothing left to do.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from blippsync.database import Database, driver_connection
from blippsync.errors import MigrationError

log = logging.getLogger(__name__)


def shipped_dir(name: str) -> Path:
    """A folder of the project shipped beside the code (a checkout, an editable install) or
    installed as data files under <prefix>/share/blippsync (a wheel, a container)."""
    beside = Path(__file__).resolve().parent.parent / name
    installed = Path(sys.prefix) / "share" / "blippsync" / name
    return beside if beside.is_dir() or not installed.is_dir() else installed


MIGRATIONS_DIR = shipped_dir("migrations")
ADVISORY_LOCK_KEY = 0x0B1199_5C  # "blipp sync": one lock for every migrator of a database
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

LEDGER_DDL = """
CREATE SCHEMA IF NOT EXISTS blippsync;
CREATE TABLE IF NOT EXISTS blippsync.schema_migrations (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    checksum    text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
);
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class MigrationStatus:
    applied: list[Migration]
    pending: list[Migration]


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files, ordered; a misnamed or duplicated version is an error."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: migration files are named NNNN_name.sql")
        version = int(match.group(1))
        if version in found:
            other = found[version].path.name
            raise MigrationError(f"{path}: version {version:04d} is also {other}")
        found[version] = Migration(version, match.group(2), path)
    return [found[v] for v in sorted(found)]


def status(db: Database, directory: Path = MIGRATIONS_DIR) -> MigrationStatus:
    migrations = discover(directory)
    with db.connect() as conn:
        ledger = _read_ledger(conn)
    _check_unchanged(migrations, ledger)
    return MigrationStatus(applied=[m for m in migrations if m.version in ledger],
                           pending=[m for m in migrations if m.version not in ledger])


def migrate(db: Database, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply every pending migration, each in its own transaction; return those applied."""
    migrations = discover(directory)
    applied: list[Migration] = []
    with db.connect() as conn:
        conn.execute(sa.text("SELECT pg_advisory_lock(:k)"), {"k": ADVISORY_LOCK_KEY})
        conn.commit()
        try:
            with conn.begin():
                conn.execute(sa.text(LEDGER_DDL))
            ledger = _read_ledger(conn)
            conn.commit()
            _check_unchanged(migrations, ledger)
            for migration in migrations:
                if migration.version in ledger:
                    continue
                _apply(conn, migration)
                applied.append(migration)
        finally:
            conn.rollback()
            conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": ADVISORY_LOCK_KEY})
            conn.commit()
    return applied


def _apply(conn: sa.Connection, migration: Migration) -> None:
    raw = driver_connection(conn)

    def report(notice: Any) -> None:  # a migration's RAISE WARNING is for the operator
        if notice.severity_nonlocalized in ("WARNING", "ERROR"):
            log.warning("%s: %s", migration.path.name, notice.message_primary)

    raw.add_notice_handler(report)
    try:
        with conn.begin():
            # the file is a script of many statements: psycopg sends it as one simple query
            raw.execute(migration.sql)
            conn.execute(sa.text("INSERT INTO blippsync.schema_migrations (version, name, checksum)"
                                 " VALUES (:v, :n, :c)"),
                         {"v": migration.version, "n": migration.name, "c": migration.checksum})
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise MigrationError(f"{migration.path.name} failed: {reason}") from None
    finally:
        raw.remove_notice_handler(report)


def _read_ledger(conn: sa.Connection) -> dict[int, str]:
    exists = conn.execute(sa.text("SELECT to_regclass('blippsync.schema_migrations')")).scalar()
    if exists is None:
        return {}
    rows = conn.execute(sa.text("SELECT version, checksum FROM blippsync.schema_migrations"))
    return {int(v): str(c) for v, c in rows}


def _check_unchanged(migrations: list[Migration], ledger: dict[int, str]) -> None:
    for migration in migrations:
        recorded = ledger.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            raise MigrationError(f"{migration.path.name} was edited after it was applied; "
                                 "restore it and put the change in a new migration")
