from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest
import sqlalchemy as sa

from blippsync.database import Database
from blippsync.errors import MigrationError
from blippsync.migrations import discover, migrate, status


def _migrate_in_process(url: str, queue: multiprocessing.Queue) -> None:
    db = Database(url, pool_size=1)
    try:
        queue.put([m.version for m in migrate(db)])
    except Exception as exc:  # pragma: no cover - reported to the parent
        queue.put(repr(exc))
    finally:
        db.dispose()


def test_migrate_twice_second_is_noop(empty_database_url: str) -> None:
    db = Database(empty_database_url, pool_size=1)
    first = migrate(db)
    assert [m.version for m in first] == [m.version for m in discover()]
    assert migrate(db) == []
    st = status(db)
    assert st.pending == [] and len(st.applied) == len(first)
    db.dispose()


def test_two_processes_migrating_at_once_apply_each_file_once(empty_database_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_migrate_in_process, args=(empty_database_url, queue))
             for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert all(isinstance(r, list) for r in results), results
    applied = sorted(v for r in results for v in r)
    assert applied == [m.version for m in discover()]  # each file applied exactly once
    db = Database(empty_database_url, pool_size=1)
    with db.connect() as conn:
        rows = conn.execute(sa.text("SELECT version FROM blippsync.schema_migrations")).all()
    assert len(rows) == len(discover())
    db.dispose()


def test_edited_applied_migration_is_an_error_naming_it(empty_database_url: str,
                                                         tmp_path: Path) -> None:
    for m in discover():
        (tmp_path / m.path.name).write_text(m.sql)
    db = Database(empty_database_url, pool_size=1)
    migrate(db, tmp_path)
    edited = tmp_path / discover()[-1].path.name
    edited.write_text(edited.read_text() + "\n-- a change\n")
    with pytest.raises(MigrationError, match=edited.name):
        migrate(db, tmp_path)
    db.dispose()


def test_re_running_every_file_is_a_noop(database_url: str) -> None:
    """Each file is idempotent on its own: replaying it over the migrated schema changes nothing."""
    db = Database(database_url, pool_size=1)
    from blippsync.database import driver_connection

    with db.begin() as conn:
        before = conn.execute(sa.text(_SCHEMA_FINGERPRINT)).scalar_one()
    for m in discover():
        with db.begin() as conn:
            driver_connection(conn).execute(m.sql)
    with db.begin() as conn:
        after = conn.execute(sa.text(_SCHEMA_FINGERPRINT)).scalar_one()
    assert before == after
    db.dispose()


def test_misnamed_migration_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "1_bad.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_name.sql"):
        discover(tmp_path)


_SCHEMA_FINGERPRINT = """
SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
  SELECT table_name || '.' || column_name || ':' || data_type || ':' || coalesce(column_default, '')
  FROM information_schema.columns WHERE table_schema IN ('public', 'auth')
  UNION ALL SELECT tablename || ':' || policyname || ':' || cmd FROM pg_policies
  UNION ALL SELECT indexname || ':' || indexdef FROM pg_indexes WHERE schemaname = 'public'
  UNION ALL SELECT conname || ':' || pg_get_constraintdef(oid) FROM pg_constraint
    WHERE connamespace = 'public'::regnamespace
  UNION ALL SELECT tgname FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL SELECT p.oid::regprocedure::text || md5(p.prosrc) FROM pg_proc p
    WHERE p.pronamespace IN ('public'::regnamespace, 'auth'::regnamespace)
) s(x)
"""
