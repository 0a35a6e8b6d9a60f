"""The migrations applied to a database that already has what Supabase provides.

Supabase ships schema auth, an auth.users table with many more columns than ours, its own
auth.uid()/jwt()/role()/email() owned by supabase_auth_admin, and the API roles. Our
0001 must create these only where missing and never replace them.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy.engine import make_url
from supabase_like import add_supabase_auth, supabase_database

from blippsync.database import Database
from blippsync.migrations import discover, migrate

AUTH_ADMIN = "supabase_auth_admin"

# Everything about the Supabase objects that must survive the migrations unchanged.
SNAPSHOT = """
SELECT jsonb_build_object(
  'columns', (SELECT jsonb_agg(jsonb_build_array(column_name, data_type, is_nullable,
                                                 column_default) ORDER BY ordinal_position)
              FROM information_schema.columns WHERE table_schema = 'auth' AND table_name = 'users'),
  'table_owner', (SELECT tableowner FROM pg_tables WHERE schemaname = 'auth'
                  AND tablename = 'users'),
  'schema_owner', (SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'auth'),
  'functions', (SELECT jsonb_agg(jsonb_build_array(p.oid::regprocedure::text, p.prosrc,
                                                   p.proowner::regrole::text,
                                                   p.prosecdef, p.provolatile)
                                 ORDER BY p.oid::regprocedure::text)
                FROM pg_proc p WHERE p.pronamespace = 'auth'::regnamespace),
  'auth_tables', (SELECT jsonb_agg(tablename ORDER BY tablename) FROM pg_tables
                  WHERE schemaname = 'auth'),
  'roles', (SELECT jsonb_agg(jsonb_build_array(rolname, rolinherit, rolcanlogin, rolbypassrls,
                                               rolsuper) ORDER BY rolname)
            FROM pg_roles WHERE rolname IN ('anon', 'authenticated', 'service_role'))
)
"""


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def supabase_like_url(empty_database_url: str) -> Iterator[str]:
    add_supabase_auth(empty_database_url)
    yield empty_database_url


def _snapshot(url: str) -> dict:
    with psycopg.connect(_libpq(url), autocommit=True) as conn:
        return conn.execute(SNAPSHOT).fetchone()[0]


def test_migrations_leave_supabase_objects_exactly_as_they_were(supabase_like_url: str) -> None:
    before = _snapshot(supabase_like_url)
    assert len(before["columns"]) == 14 and before["table_owner"] == AUTH_ADMIN
    db = Database(supabase_like_url, pool_size=1)
    try:
        applied = migrate(db)
        assert [m.version for m in applied] == [m.version for m in discover()]
        assert migrate(db) == []
    finally:
        db.dispose()
    after = _snapshot(supabase_like_url)
    assert after == before


def test_rls_works_with_supabase_own_functions(supabase_like_url: str) -> None:
    """Our policies call auth.jwt()/auth.uid(): Supabase's bodies must serve them too."""
    db = Database(supabase_like_url, pool_size=1)
    migrate(db)
    db.dispose()
    with psycopg.connect(_libpq(supabase_like_url)) as conn:
        conn.execute("INSERT INTO auth.users (id, email, email_confirmed_at) VALUES "
                     "('00000000-0000-0000-0000-000000000001', 'me@example.test', now())")
        conn.execute("INSERT INTO public.businesses (name, created_by) VALUES "
                     "('Mine', 'me@example.test'), ('Theirs', 'them@example.test')")
        conn.execute("SET LOCAL ROLE authenticated")
        conn.execute("""SELECT set_config('request.jwt.claims',
                        '{"sub": "00000000-0000-0000-0000-000000000001",
                          "email": "me@example.test", "role": "authenticated"}', true)""")
        names = [r[0] for r in conn.execute("SELECT name FROM public.businesses")]
        assert names == ["Mine"]
        conn.rollback()


def test_plain_postgres_gets_the_compat_objects(empty_database_url: str) -> None:
    db = Database(empty_database_url, pool_size=1)
    migrate(db)
    db.dispose()
    snap = _snapshot(empty_database_url)
    functions = {f[0] for f in snap["functions"]}
    assert {"auth.uid()", "auth.jwt()", "auth.role()", "auth.email()"} <= functions
    assert "users" in snap["auth_tables"]
    assert {r[0] for r in snap["roles"]} == {"anon", "authenticated", "service_role"}
    service_role = next(r for r in snap["roles"] if r[0] == "service_role")
    assert service_role[3] is True  # BYPASSRLS, as on Supabase


# Privileges row-level security does not govern, or that only the daemon should hold.
_LOOSE_PRIVILEGES = """
SELECT c.relname, r.rolname, p.privilege
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN (VALUES ('anon'), ('authenticated')) AS r(rolname)
CROSS JOIN (VALUES ('TRUNCATE'), ('REFERENCES'), ('TRIGGER')) AS p(privilege)
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
  AND has_table_privilege(r.rolname, c.oid, p.privilege)
"""
_ANON_FUNCTIONS = """
SELECT p.oid::regprocedure::text FROM pg_proc p
WHERE p.pronamespace = 'public'::regnamespace AND has_function_privilege('anon', p.oid, 'EXECUTE')
"""


def test_migrations_run_as_supabase_non_superuser_owner_and_close_default_grants(
        pg_server_url: str) -> None:
    """Supabase's default privileges grant ALL on every new table to anon/authenticated;
    after migrating (as a NOSUPERUSER owner) none of what RLS does not govern is left."""
    with supabase_database(pg_server_url) as prepared:
        with psycopg.connect(_libpq(prepared.owner_url), autocommit=True) as conn:
            assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
                                ).fetchone() == (False,)
            assert conn.execute(_LOOSE_PRIVILEGES).fetchall() == []
            assert conn.execute(_ANON_FUNCTIONS).fetchall() == []
            owned = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
                                 "AND tableowner <> current_user").fetchone()[0]
            assert owned == 0
        db = Database(prepared.owner_url, pool_size=1)
        try:
            assert migrate(db) == []  # idempotent for the same owner
        finally:
            db.dispose()
