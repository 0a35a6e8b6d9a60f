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

from blippsync.database import Database
from blippsync.migrations import discover, migrate

AUTH_ADMIN = "supabase_auth_admin"

# Roles are cluster-wide: created only when missing (another test run may have made them).
SUPABASE_ROLES = """
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS; END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'supabase_auth_admin') THEN
        CREATE ROLE supabase_auth_admin NOLOGIN NOINHERIT; END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- a parallel run raced us
END $$;
"""

# Shaped like Supabase's own auth schema (a subset of its columns, its function bodies).
SUPABASE_AUTH = """
CREATE SCHEMA auth AUTHORIZATION supabase_auth_admin;
CREATE TABLE auth.users (
    instance_id         uuid,
    id                  uuid NOT NULL PRIMARY KEY,
    aud                 varchar(255),
    role                varchar(255),
    email               varchar(255),
    encrypted_password  varchar(255),
    email_confirmed_at  timestamptz,
    raw_app_meta_data   jsonb,
    raw_user_meta_data  jsonb,
    is_super_admin      boolean,
    created_at          timestamptz,
    updated_at          timestamptz,
    phone               text UNIQUE DEFAULT NULL,
    is_anonymous        boolean NOT NULL DEFAULT false
);
ALTER TABLE auth.users OWNER TO supabase_auth_admin;
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
  select
  coalesce(
    nullif(current_setting('request.jwt.claim.sub', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
  )::uuid
$$;
CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS $$
  select
  coalesce(
    nullif(current_setting('request.jwt.claim.role', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
  )::text
$$;
CREATE FUNCTION auth.email() RETURNS text LANGUAGE sql STABLE AS $$
  select
  coalesce(
    nullif(current_setting('request.jwt.claim.email', true), ''),
    (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
  )::text
$$;
CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $$
  select
    coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
$$;
ALTER FUNCTION auth.uid() OWNER TO supabase_auth_admin;
ALTER FUNCTION auth.role() OWNER TO supabase_auth_admin;
ALTER FUNCTION auth.email() OWNER TO supabase_auth_admin;
ALTER FUNCTION auth.jwt() OWNER TO supabase_auth_admin;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA auth TO anon, authenticated, service_role;
"""

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
    with psycopg.connect(_libpq(empty_database_url), autocommit=True) as conn:
        conn.execute(SUPABASE_ROLES)
        conn.execute(SUPABASE_AUTH)
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
