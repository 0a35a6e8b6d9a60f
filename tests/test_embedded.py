"""The embedded PostgreSQL path: what a new user gets with no database configured, and the
test fixtures themselves running on it. CI runs these (`pytest -m embedded`) with no
TEST_DATABASE_URL; they also run in the ordinary suite.

A server start costs seconds, so the CLI test walks the whole story on one data dir and
stops its server at the end; the fixture test starts the session-private server the test
fixtures use without TEST_DATABASE_URL, and checks it is stopped and gone afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from blippsync.database import Database
from blippsync.migrations import discover
from blippsync.migrations import status as migration_status
from blippsync.testing.database import embedded_test_server, fresh_database

pytestmark = pytest.mark.embedded


def _blippsync(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("BLIPPSYNC_") and k != "TEST_DATABASE_URL"}
    return subprocess.run([sys.executable, "-m", "blippsync", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=180)


@pytest.fixture
def project_dir() -> Iterator[Path]:
    """A fresh folder the `pgserver` system user can always reach (pgserver switches to it
    when run as root). Not pytest's tmp_path: a concurrent pytest session resets
    /tmp/pytest-of-<user> to mode 0700, which would lock the server out mid-test."""
    path = Path(tempfile.mkdtemp(prefix="blippsync-embedded-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_cli_with_no_database_configured_starts_and_reuses_the_embedded_server(
        project_dir: Path) -> None:
    tmp_path = project_dir
    pgdata = tmp_path / ".blippsync" / "pgdata"
    try:
        migrated = _blippsync(["migrate"], tmp_path)
        assert migrated.returncode == 0, migrated.stderr
        assert f"applied {discover()[0].path.name}" in migrated.stdout
        assert (pgdata / "PG_VERSION").exists()
        pid = (pgdata / "postmaster.pid").read_text().split()[0]

        added = _blippsync(["businesses", "add", "--name", "Embedded Co", "--owner-email",
                            "owner@example.com", "--json"], tmp_path)
        assert added.returncode == 0, added.stderr
        business_id = json.loads(added.stdout)["id"]

        shown = _blippsync(["status", "--json"], tmp_path)
        assert shown.returncode == 0, shown.stderr
        report = json.loads(shown.stdout)
        assert report["migrations"]["pending"] == []
        assert report["counts"]["businesses"] == 1
        assert shown.stderr == ""  # nothing but the answer: no warnings from the server
        # the same server answered every command: started once, then reused
        assert (pgdata / "postmaster.pid").read_text().split()[0] == pid

        listed = _blippsync(["businesses", "list", "--json"], tmp_path)
        assert [b["id"] for b in json.loads(listed.stdout)] == [business_id]
    finally:
        stopped = _blippsync(["db", "stop"], tmp_path)
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout.strip() == "stopped" and stopped.stderr == ""
    assert not (pgdata / "postmaster.pid").exists()


def test_the_test_database_fixture_works_on_a_private_embedded_server() -> None:
    with embedded_test_server() as url:
        socket_dir = Path(url.split("host=", 1)[1].split("&", 1)[0])
        _check_fresh_databases(url)
    assert not socket_dir.exists()  # stopped and removed: nothing left for the next session


def _check_fresh_databases(url: str) -> None:
    with fresh_database(url) as first, fresh_database(url) as second:
        assert first != second
        db = Database(first, pool_size=1)
        try:
            assert migration_status(db).pending == []
            with db.begin() as conn:
                conn.execute(sa.text("INSERT INTO businesses (name, created_by) "
                                     "VALUES ('X', 'x@example.com')"))
        finally:
            db.dispose()
        other = Database(second, pool_size=1)
        try:  # each test's database is its own
            with other.connect() as conn:
                assert conn.execute(sa.text("SELECT count(*) FROM businesses")).scalar_one() == 0
        finally:
            other.dispose()
    admin = Database(url, pool_size=1)
    try:  # and dropped afterwards
        with admin.connect() as conn:
            names = conn.execute(sa.text("SELECT datname FROM pg_database")).scalars().all()
        assert not {first.rsplit("/", 1)[-1].split("?")[0],
                    second.rsplit("/", 1)[-1].split("?")[0]} & set(names)
    finally:
        admin.dispose()
