-- What a Supabase database already provides, created here only where it is missing, so
-- that these migrations apply unchanged to Supabase and to plain PostgreSQL and never
-- replace Supabase's own objects: the API roles, schema auth, auth.users and the
-- auth.uid()/role()/email()/jwt() helpers reading the request's JWT claims.

DO $roles$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'anon') THEN
        BEGIN
            CREATE ROLE anon NOLOGIN NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;  -- another database raced us
        END;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'authenticated') THEN
        BEGIN
            CREATE ROLE authenticated NOLOGIN NOINHERIT;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'service_role') THEN
        BEGIN
            CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
        END;
    END IF;
END
$roles$;

DO $auth$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'auth') THEN
        CREATE SCHEMA auth;
        GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
    END IF;

    IF to_regclass('auth.users') IS NULL THEN
        CREATE TABLE auth.users (
            id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            email       text,
            created_at  timestamptz NOT NULL DEFAULT now()
        );
    END IF;

    IF to_regprocedure('auth.jwt()') IS NULL THEN
        CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS $f$
            SELECT coalesce(nullif(current_setting('request.jwt.claim', true), ''),
                            nullif(current_setting('request.jwt.claims', true), ''))::jsonb
        $f$;
        GRANT EXECUTE ON FUNCTION auth.jwt() TO anon, authenticated, service_role;
    END IF;

    IF to_regprocedure('auth.uid()') IS NULL THEN
        CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $f$
            SELECT coalesce(nullif(current_setting('request.jwt.claim.sub', true), ''),
                            nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')::uuid
        $f$;
        GRANT EXECUTE ON FUNCTION auth.uid() TO anon, authenticated, service_role;
    END IF;

    IF to_regprocedure('auth.role()') IS NULL THEN
        CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS $f$
            SELECT coalesce(nullif(current_setting('request.jwt.claim.role', true), ''),
                            nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')::text
        $f$;
        GRANT EXECUTE ON FUNCTION auth.role() TO anon, authenticated, service_role;
    END IF;

    IF to_regprocedure('auth.email()') IS NULL THEN
        CREATE FUNCTION auth.email() RETURNS text LANGUAGE sql STABLE AS $f$
            SELECT coalesce(nullif(current_setting('request.jwt.claim.email', true), ''),
                            nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')::text
        $f$;
        GRANT EXECUTE ON FUNCTION auth.email() TO anon, authenticated, service_role;
    END IF;
END
$auth$;

-- As on Supabase: the API roles get table privileges and row-level security decides rows.
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO anon, authenticated, service_role;
