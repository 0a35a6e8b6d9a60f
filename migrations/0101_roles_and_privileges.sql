-- Who may do what, as Supabase's API roles see it. Decisions (docs/architecture.md,
-- "Who may change what"):
--
-- * A user is a business's OWNER when their confirmed, non-anonymous email is its
--   created_by, or their profile says role 'owner'; ADMIN when their profile says 'admin';
--   MEMBER when their profile names the business. An empty or unconfirmed email, and an
--   anonymous sign-in, never match a business (GoTrue issues "email": "" for phone and
--   anonymous sign-ins; an email in a token is not proof it was confirmed).
-- * Members read the business's data and write customers, techs, qr_codes,
--   private_feedback and customer_enrollments. Owners and admins also change the business
--   (name, google_review_url, ...), sequences and their steps, and may delete the
--   integrations (a disconnect). Only owners delete the business.
-- * Token columns (integrations_*.access/refresh/previous_refresh_token,
--   connections.credentials/previous_credentials) are neither readable nor writable by
--   anon/authenticated: tokens reach blippsync through `blippsync connect ...
--   --refresh-token-stdin` (the web app's server side) and are written by the daemon's role.
-- * The daemon's ledgers (review_requests, trigger_events, sync_runs, ...) are read-only
--   to users; identity conflicts may be marked resolved. Users never choose or change a
--   row's id (a unique violation would tell them another tenant's row has it).
-- * TRUNCATE, REFERENCES and TRIGGER, which row-level security does not govern, are
--   revoked from anon and authenticated (Supabase's default privileges grant them on
--   every new table); anon gets no table privilege at all; the SECURITY DEFINER helpers
--   are not executable by anon or PUBLIC.
-- Idempotent: CREATE OR REPLACE, DROP POLICY IF EXISTS + CREATE, GRANT/REVOKE.

-- Plain PostgreSQL: our stand-in auth.users learns the two columns GoTrue has. Supabase's
-- own table already has them (and is not ours to alter). Rows that predate this were
-- created by whoever ran without GoTrue and are taken as confirmed.
DO $auth$
BEGIN
    -- pg_attribute, not information_schema: the latter hides columns we hold no privilege on
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'auth.users'::regclass
                   AND attname = 'email_confirmed_at' AND NOT attisdropped) THEN
        ALTER TABLE auth.users ADD COLUMN email_confirmed_at timestamptz;
        UPDATE auth.users SET email_confirmed_at = created_at;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'auth.users'::regclass
                   AND attname = 'is_anonymous' AND NOT attisdropped) THEN
        ALTER TABLE auth.users ADD COLUMN is_anonymous boolean NOT NULL DEFAULT false;
    END IF;
END
$auth$;

-- The caller's email, only when it proves something: confirmed, not anonymous, not empty.
CREATE OR REPLACE FUNCTION public.blipp_verified_email() RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT lower(btrim(u.email)) FROM auth.users AS u
    WHERE u.id = auth.uid() AND u.email_confirmed_at IS NOT NULL
      AND NOT coalesce(u.is_anonymous, false) AND btrim(coalesce(u.email, '')) <> ''
      AND lower(btrim(u.email)) = lower(btrim(auth.jwt() ->> 'email'))
$$;

-- Businesses where the caller is the verified owner (created_by), or holds one of `roles`
-- in their profile.
CREATE OR REPLACE FUNCTION public.blipp_user_business_ids_as(roles text[]) RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT b.id FROM public.businesses AS b
    WHERE lower(b.created_by) = public.blipp_verified_email()
    UNION
    SELECT p.business_id FROM public.profiles AS p
    WHERE p.id = auth.uid() AND p.business_id IS NOT NULL AND p.role = ANY (roles)
$$;

-- What the policies ask: members (any role), administrators, owners.
CREATE OR REPLACE FUNCTION public.blipp_user_business_ids() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT public.blipp_user_business_ids_as(ARRAY['owner', 'admin', 'member'])
$$;
CREATE OR REPLACE FUNCTION public.blipp_user_admin_business_ids() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT public.blipp_user_business_ids_as(ARRAY['owner', 'admin'])
$$;
CREATE OR REPLACE FUNCTION public.blipp_user_owned_business_ids() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT public.blipp_user_business_ids_as(ARRAY['owner'])
$$;

-- businesses: INSERT ... RETURNING (supabase-js insert().select()) must see the new row,
-- which the helpers (reading the table) cannot yet: the SELECT policy also matches
-- created_by against the caller's verified email directly.
DROP POLICY IF EXISTS "owners and members" ON public.businesses;
DROP POLICY IF EXISTS "owners and members update" ON public.businesses;
DROP POLICY IF EXISTS "owners create their own" ON public.businesses;
DROP POLICY IF EXISTS "owners delete" ON public.businesses;
DROP POLICY IF EXISTS "members read" ON public.businesses;
DROP POLICY IF EXISTS "admins update" ON public.businesses;
DROP POLICY IF EXISTS "verified owners create" ON public.businesses;
DROP POLICY IF EXISTS "owners delete theirs" ON public.businesses;
CREATE POLICY "members read" ON public.businesses FOR SELECT TO authenticated
    USING (id IN (SELECT public.blipp_user_business_ids())
           OR lower(created_by) = public.blipp_verified_email());
CREATE POLICY "admins update" ON public.businesses FOR UPDATE TO authenticated
    USING (id IN (SELECT public.blipp_user_admin_business_ids()))
    WITH CHECK (id IN (SELECT public.blipp_user_admin_business_ids()));
CREATE POLICY "verified owners create" ON public.businesses FOR INSERT TO authenticated
    WITH CHECK (lower(created_by) = public.blipp_verified_email());
CREATE POLICY "owners delete theirs" ON public.businesses FOR DELETE TO authenticated
    USING (id IN (SELECT public.blipp_user_owned_business_ids()));

-- Writes reserved to owners and admins, on top of the members' policies (restrictive
-- policies AND with the permissive ones).
DO $admins$
DECLARE
    t text;
    cmd text;
    scope text;
BEGIN
    FOREACH t IN ARRAY ARRAY['sequences', 'sequence_steps', 'integrations_quickbooks',
                             'integrations_jobber'] LOOP
        scope := CASE WHEN t = 'sequence_steps'
            THEN 'EXISTS (SELECT 1 FROM public.sequences s WHERE s.id = sequence_id AND '
                 's.business_id IN (SELECT public.blipp_user_admin_business_ids()))'
            ELSE 'business_id IN (SELECT public.blipp_user_admin_business_ids())' END;
        FOREACH cmd IN ARRAY ARRAY['INSERT', 'UPDATE', 'DELETE'] LOOP
            EXECUTE format('DROP POLICY IF EXISTS %I ON public.%I', 'admins ' || lower(cmd), t);
            EXECUTE format('CREATE POLICY %I ON public.%I AS RESTRICTIVE FOR %s TO authenticated '
                           '%s', 'admins ' || lower(cmd), t, cmd,
                           CASE cmd WHEN 'INSERT' THEN format('WITH CHECK (%s)', scope)
                                    WHEN 'UPDATE' THEN format('USING (%s) WITH CHECK (%s)',
                                                              scope, scope)
                                    ELSE format('USING (%s)', scope) END);
        END LOOP;
    END LOOP;
END
$admins$;

-- Privileges row-level security does not govern, on every table of public.
REVOKE TRUNCATE, REFERENCES, TRIGGER ON ALL TABLES IN SCHEMA public FROM PUBLIC, anon, authenticated;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    REVOKE TRUNCATE, REFERENCES, TRIGGER ON TABLES FROM PUBLIC, anon, authenticated;
-- anon (a request without a user) has no policy anywhere: no privilege either.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM anon;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM anon;

-- The daemon's tables and ledgers: read-only to users.
DO $daemon$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['connections', 'sync_runs', 'customer_identities', 'trigger_events',
                             'enrollment_decisions', 'customer_enrollments_archive',
                             'inbound_sms', 'webhook_deliveries', 'review_requests',
                             'identity_conflicts', 'customer_sources'] LOOP
        EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON public.%I FROM PUBLIC, authenticated', t);
    END LOOP;
END
$daemon$;
GRANT UPDATE (resolved_at) ON public.identity_conflicts TO authenticated;

-- Token columns: users get every other column. Column-level SELECT means the web app
-- lists the columns it reads (select('id, realm_id, ...'), not select('*')).
DO $tokens$
DECLARE
    t text;
    secret_columns text[];
    readable text;
BEGIN
    FOREACH t IN ARRAY ARRAY['integrations_quickbooks', 'integrations_jobber', 'connections'] LOOP
        secret_columns := CASE WHEN t = 'connections'
            THEN ARRAY['credentials', 'previous_credentials']
            ELSE ARRAY['access_token', 'refresh_token', 'previous_refresh_token'] END;
        EXECUTE format('REVOKE SELECT, INSERT, UPDATE ON public.%I FROM PUBLIC, authenticated', t);
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO readable
        FROM pg_attribute a
        WHERE a.attrelid = ('public.' || t)::regclass AND a.attnum > 0 AND NOT a.attisdropped
          AND a.attname <> ALL (secret_columns);
        EXECUTE format('GRANT SELECT (%s) ON public.%I TO authenticated', readable, t);
    END LOOP;
END
$tokens$;

-- Ids are the database's to give: a user choosing one could probe whether another
-- tenant's row has it (a unique violation where a fresh id succeeds). Users write every
-- column of their tables except id.
DO $ids$
DECLARE
    t text;
    writable text;
BEGIN
    FOREACH t IN ARRAY ARRAY['customers', 'techs', 'qr_codes', 'private_feedback',
                             'customer_enrollments', 'sequences', 'sequence_steps'] LOOP
        SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO writable
        FROM pg_attribute a
        WHERE a.attrelid = ('public.' || t)::regclass AND a.attnum > 0 AND NOT a.attisdropped
          AND a.attname <> 'id';
        EXECUTE format('REVOKE INSERT, UPDATE ON public.%I FROM PUBLIC, authenticated', t);
        EXECUTE format('GRANT INSERT (%s), UPDATE (%s) ON public.%I TO authenticated',
                       writable, writable, t);
    END LOOP;
END
$ids$;

-- Functions: the policy helpers run for signed-in users only.
DO $functions$
DECLARE
    f regprocedure;
BEGIN
    FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
             WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'blipp\_%' LOOP
        EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC, anon', f);
    END LOOP;
END
$functions$;
ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE EXECUTE ON FUNCTIONS FROM anon;
GRANT EXECUTE ON FUNCTION public.blipp_verified_email(), public.blipp_user_business_ids_as(text[]),
    public.blipp_user_business_ids(),
    public.blipp_user_admin_business_ids(), public.blipp_user_owned_business_ids(),
    public.blipp_user_sequence_ids() TO authenticated, service_role;
