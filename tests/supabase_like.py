"""A database prepared the way Supabase prepares one, on any PostgreSQL server.

From Supabase's own init scripts (../shared/api/supabase.md): the API roles; a project
owner that is NOT a superuser (NOSUPERUSER BYPASSRLS CREATEROLE, member of the API roles;
played here by `blipp_sb_postgres`, since the server's own `postgres` is shared);
`authenticator`, which logs in and switches role per request; GoTrue's `auth` schema owned
by supabase_auth_admin; and the default privileges that grant ALL on every new table,
function and sequence of `public` to anon, authenticated and service_role.

Roles are cluster-wide and shared with other test runs: they are created only when
missing (a parallel run may race us) and never altered or dropped.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import psycopg
from psycopg import sql
from sqlalchemy.engine import make_url

from blippsync.database import Database
from blippsync.migrations import migrate
from blippsync.testing.database import fresh_database

PROJECT_OWNER = "blipp_sb_postgres"

SUPABASE_ROLES = """
DO $$
DECLARE
    wanted text[][] := ARRAY[
        ARRAY['anon', 'NOLOGIN NOINHERIT'],
        ARRAY['authenticated', 'NOLOGIN NOINHERIT'],
        ARRAY['service_role', 'NOLOGIN NOINHERIT BYPASSRLS'],
        ARRAY['supabase_auth_admin', 'NOLOGIN NOINHERIT'],
        ARRAY['authenticator', 'LOGIN NOINHERIT'],
        ARRAY['blipp_sb_postgres', 'LOGIN NOSUPERUSER BYPASSRLS CREATEROLE']];
    r text[];
BEGIN
    FOREACH r SLICE 1 IN ARRAY wanted LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r[1]) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I %s', r[1], r[2]);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- raced
            END;
        END IF;
    END LOOP;
END $$;
"""
# Memberships: GRANT of a role already held is a notice, not an error.
SUPABASE_MEMBERSHIPS = """
GRANT anon, authenticated, service_role TO authenticator;
GRANT anon, authenticated, service_role TO blipp_sb_postgres;
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

# What the project owner gets on Supabase: the auth tables to reference and read, and
# the default privileges that grant everything new in public to the API roles.
SUPABASE_OWNER_SETUP = """
GRANT USAGE ON SCHEMA auth TO blipp_sb_postgres;
GRANT SELECT, REFERENCES ON auth.users TO blipp_sb_postgres;
ALTER SCHEMA public OWNER TO blipp_sb_postgres;
ALTER DEFAULT PRIVILEGES FOR ROLE blipp_sb_postgres IN SCHEMA public
    GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE blipp_sb_postgres IN SCHEMA public
    GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES FOR ROLE blipp_sb_postgres IN SCHEMA public
    GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
"""


def libpq(url: str, user: str | None = None) -> str:
    parsed = make_url(url).set(drivername="postgresql")
    if user is not None:
        parsed = parsed.set(username=user, password=None)
    return parsed.render_as_string(hide_password=False)


def create_roles(superuser_url: str) -> None:
    with psycopg.connect(libpq(superuser_url), autocommit=True) as conn:
        conn.execute(SUPABASE_ROLES)
        conn.execute(SUPABASE_MEMBERSHIPS)


def add_supabase_auth(superuser_url: str) -> None:
    """Roles and GoTrue's auth schema in an empty database (no migrations)."""
    create_roles(superuser_url)
    with psycopg.connect(libpq(superuser_url), autocommit=True) as conn:
        conn.execute(SUPABASE_AUTH)


@dataclass(frozen=True)
class SupabaseDatabase:
    owner_url: str          # the project owner (`postgres` on Supabase): migrates, seeds
    authenticator_url: str  # what PostgREST logs in as
    superuser_url: str      # Supabase's own roles' part (GoTrue writing auth.users)


@contextmanager
def supabase_database(server_url: str) -> Iterator[SupabaseDatabase]:
    """A fresh database prepared as Supabase prepares one and migrated by its non-superuser
    owner; dropped afterwards."""
    with fresh_database(server_url, migrated=False) as url:
        add_supabase_auth(url)
        dbname = make_url(url).database
        with psycopg.connect(libpq(url), autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO blipp_sb_postgres").format(
                sql.Identifier(dbname)))
            conn.execute(SUPABASE_OWNER_SETUP)
        owner_url = make_url(url).set(username=PROJECT_OWNER, password=None).render_as_string(
            hide_password=False)
        db = Database(owner_url, pool_size=1)
        try:
            migrate(db)
        finally:
            db.dispose()
        yield SupabaseDatabase(owner_url=owner_url, superuser_url=url,
                               authenticator_url=libpq(url, user="authenticator"))
