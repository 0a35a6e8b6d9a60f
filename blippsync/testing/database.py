"""A fresh, migrated database per test, cloned from a template (CREATE DATABASE ... TEMPLATE).

The server is $TEST_DATABASE_URL when set, else an embedded PostgreSQL of the test
session's own (`embedded_test_server`: a fresh data directory, stopped and removed at the
end), so two checkouts or two sessions never share or stop each other's server. The
template's name carries a hash of the migrations, so editing one builds a new template;
building it is serialised by an advisory lock, so parallel runs on one server are safe.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from blippsync.database import Database
from blippsync.migrations import MIGRATIONS_DIR, discover, migrate

_TEMPLATE_LOCK = 0x7E57_DB


@contextmanager
def session_server_url() -> Iterator[str]:
    """The PostgreSQL server a test session uses: TEST_DATABASE_URL, else its own embedded one."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    with embedded_test_server() as embedded:
        yield embedded


@contextmanager
def embedded_test_server() -> Iterator[str]:
    """An embedded PostgreSQL in a fresh data directory, stopped and deleted afterwards."""
    from blippsync.embedded import embedded_url, stop_embedded

    # Not under pytest's tmp_path: pgserver switches to its own system user when run as
    # root, and a concurrent session resets /tmp/pytest-of-<user> to mode 0700.
    data_dir = Path(tempfile.mkdtemp(prefix="blippsync-test-pg-"))
    data_dir.chmod(0o755)
    try:
        yield embedded_url(data_dir / "pgdata")
    finally:
        try:
            stop_embedded(data_dir / "pgdata")
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)


def _libpq(url: str, dbname: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if dbname:
        parsed = parsed.set(database=dbname)
    return parsed.render_as_string(hide_password=False)


def _with_db(url: str, dbname: str) -> str:
    return make_url(url).set(database=dbname).render_as_string(hide_password=False)


def template_name(migrations_dir: Path = MIGRATIONS_DIR) -> str:
    digest = hashlib.sha256()
    for migration in discover(migrations_dir):
        digest.update(migration.path.name.encode())
        digest.update(migration.checksum.encode())
    return f"blippsync_tpl_{digest.hexdigest()[:12]}"


def ensure_template(url: str) -> str:
    """Create and migrate the template database once; return its name."""
    name = template_name()
    admin = _libpq(url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_TEMPLATE_LOCK,))
        try:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s AND datistemplate",
                                  (name,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)))
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                db = Database(_with_db(url, name), pool_size=1)
                try:
                    migrate(db)
                finally:
                    db.dispose()
                conn.execute("UPDATE pg_database SET datistemplate = true WHERE datname = %s",
                             (name,))
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_TEMPLATE_LOCK,))
    return name


@contextmanager
def fresh_database(url: str, *, migrated: bool = True) -> Iterator[str]:
    """A new database (a clone of the migrated template, or empty); dropped afterwards."""
    name = f"blippsync_test_{uuid.uuid4().hex[:12]}"
    admin = _libpq(url, "postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        if migrated:
            template = ensure_template(url)
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template)))
        else:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield _with_db(url, name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))
