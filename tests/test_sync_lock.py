"""A run that finds its connection locked by another process (often a killed one whose
PostgreSQL session has not been closed yet) waits for it, bounded and saying so, or fails
with exit 1 and the reason; it never reports an empty success."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import sqlalchemy as sa

from blippsync.businesses import add_business
from blippsync.connections import ensure_connection
from blippsync.database import Database

LOCK = "SELECT pg_advisory_lock(hashtextextended('blippsync:connection:' || %s, 0))"


def _import(cli_env: dict[str, str], path: Path, business: object, wait: int
            ) -> subprocess.CompletedProcess[str]:
    env = {**cli_env, "BLIPPSYNC_SYNC_LOCK_WAIT_SECONDS": str(wait)}
    return subprocess.run([sys.executable, "-m", "blippsync", "import", "csv", str(path),
                           "--business", str(business)], env=env, capture_output=True,
                          text=True, timeout=120)


def _setup(db: Database, tmp_path: Path) -> tuple[object, str, Path]:
    business = add_business(db, name="Locked", owner_email="o@lock.test", timezone="UTC")
    with db.begin() as conn:
        connection = ensure_connection(conn, business, "csv")
    path = tmp_path / "customers.csv"
    path.write_text("Name,Email\nAda,ada@lock.test\nBo,bo@lock.test\n")
    return business, str(connection.id), path


def test_a_held_lock_fails_with_exit_1_and_the_holder_never_an_empty_success(
        db: Database, database_url: str, cli_env: dict[str, str], tmp_path: Path) -> None:
    business, connection_id, path = _setup(db, tmp_path)
    with psycopg.connect(database_url, autocommit=True,
                         application_name="the killed import") as holder:
        holder.execute(LOCK, (connection_id,))
        pid = holder.info.backend_pid
        out = _import(cli_env, path, business, wait=1)
    assert out.returncode == 1
    assert "0 customers were created" not in out.stdout
    assert "another process is syncing this csv connection" in out.stderr
    assert f"PostgreSQL backend pid {pid} of the killed import" in out.stderr
    assert "waited 1s (sync.lock_wait_seconds)" in out.stderr
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM customers")).scalar_one() == 0


def test_a_run_waits_for_the_lock_to_be_let_go_then_does_its_work(
        db: Database, database_url: str, cli_env: dict[str, str], tmp_path: Path) -> None:
    business, connection_id, path = _setup(db, tmp_path)
    holder = psycopg.connect(database_url, autocommit=True)
    holder.execute(LOCK, (connection_id,))
    env = {**cli_env, "BLIPPSYNC_SYNC_LOCK_WAIT_SECONDS": "60"}
    proc = subprocess.Popen([sys.executable, "-m", "blippsync", "import", "csv", str(path),
                             "--business", str(business)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    said = False
    for line in iter(proc.stderr.readline, ""):
        if "waiting up to 60s" in line:
            said = True
            break
    holder.close()  # the session ends (as a killed process's finally does): the lock is free
    out, err = proc.communicate(timeout=120)
    assert said, "the run did not say it was waiting"
    assert proc.returncode == 0, err
    assert "2 customers were created" in out
