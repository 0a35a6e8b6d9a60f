-- Row-level security on every table of the public schema, forced (table owners too).
-- A user reaches a business they own (businesses.created_by = the JWT's email, the
-- spec's policy) or are a member of (profiles.business_id); a profile is visible and
-- editable only by its own user. The helpers are SECURITY DEFINER with a fixed, empty
-- search_path so policies can consult businesses/profiles without recursing into RLS.
-- The daemon connects with a role that bypasses RLS (superuser, or Supabase's postgres)
-- and scopes every query by business_id itself.

CREATE OR REPLACE FUNCTION public.blipp_user_business_ids() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT b.id FROM public.businesses AS b
    WHERE lower(b.created_by) = lower(auth.jwt() ->> 'email')
    UNION
    SELECT p.business_id FROM public.profiles AS p
    WHERE p.id = auth.uid() AND p.business_id IS NOT NULL
$$;

CREATE OR REPLACE FUNCTION public.blipp_user_sequence_ids() RETURNS SETOF uuid
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = '' AS $$
    SELECT s.id FROM public.sequences AS s
    WHERE s.business_id IN (SELECT public.blipp_user_business_ids())
$$;

REVOKE ALL ON FUNCTION public.blipp_user_business_ids() FROM PUBLIC;
REVOKE ALL ON FUNCTION public.blipp_user_sequence_ids() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.blipp_user_business_ids() TO authenticated, service_role;
GRANT EXECUTE ON FUNCTION public.blipp_user_sequence_ids() TO authenticated, service_role;

GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO anon, authenticated, service_role;

DO $rls$
DECLARE
    t text;
BEGIN
    -- enable and force on every table of the public schema
    FOR t IN SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') LOOP
        EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE public.%I FORCE ROW LEVEL SECURITY', t);
    END LOOP;

    -- tables the web app's users read and write, scoped by business_id
    FOREACH t IN ARRAY ARRAY['customers', 'sequences', 'techs', 'qr_codes', 'private_feedback',
                             'review_requests', 'integrations_quickbooks', 'integrations_jobber',
                             'identity_conflicts'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public' AND tablename = t
                       AND policyname = 'business members') THEN
            EXECUTE format('CREATE POLICY "business members" ON public.%I FOR ALL TO authenticated '
                           'USING (business_id IN (SELECT public.blipp_user_business_ids())) '
                           'WITH CHECK (business_id IN (SELECT public.blipp_user_business_ids()))', t);
        END IF;
    END LOOP;

    -- the daemon's own tables: readable by the business's users, written by the daemon only
    FOREACH t IN ARRAY ARRAY['connections', 'sync_runs', 'customer_identities', 'trigger_events'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public' AND tablename = t
                       AND policyname = 'business members read') THEN
            EXECUTE format('CREATE POLICY "business members read" ON public.%I FOR SELECT '
                           'TO authenticated '
                           'USING (business_id IN (SELECT public.blipp_user_business_ids()))', t);
        END IF;
    END LOOP;

    -- children of a sequence, scoped through it
    FOREACH t IN ARRAY ARRAY['sequence_steps', 'customer_enrollments'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public' AND tablename = t
                       AND policyname = 'business members') THEN
            EXECUTE format('CREATE POLICY "business members" ON public.%I FOR ALL TO authenticated '
                           'USING (sequence_id IN (SELECT public.blipp_user_sequence_ids())) '
                           'WITH CHECK (sequence_id IN (SELECT public.blipp_user_sequence_ids()))', t);
        END IF;
    END LOOP;

    IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public'
                   AND tablename = 'businesses' AND policyname = 'owners and members') THEN
        CREATE POLICY "owners and members" ON public.businesses FOR SELECT TO authenticated
            USING (id IN (SELECT public.blipp_user_business_ids()));
        CREATE POLICY "owners and members update" ON public.businesses FOR UPDATE TO authenticated
            USING (id IN (SELECT public.blipp_user_business_ids()))
            WITH CHECK (id IN (SELECT public.blipp_user_business_ids()));
        CREATE POLICY "owners create their own" ON public.businesses FOR INSERT TO authenticated
            WITH CHECK (lower(created_by) = lower(auth.jwt() ->> 'email'));
        CREATE POLICY "owners delete" ON public.businesses FOR DELETE TO authenticated
            USING (lower(created_by) = lower(auth.jwt() ->> 'email'));
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public'
                   AND tablename = 'profiles' AND policyname = 'own profile') THEN
        CREATE POLICY "own profile" ON public.profiles FOR SELECT TO authenticated
            USING (id = auth.uid());
        CREATE POLICY "own profile update" ON public.profiles FOR UPDATE TO authenticated
            USING (id = auth.uid()) WITH CHECK (id = auth.uid());
        CREATE POLICY "own profile insert" ON public.profiles FOR INSERT TO authenticated
            WITH CHECK (id = auth.uid() AND (business_id IS NULL
                        OR business_id IN (SELECT public.blipp_user_business_ids())));
    END IF;

    IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public'
                   AND tablename = 'customer_sources' AND policyname = 'readable') THEN
        CREATE POLICY "readable" ON public.customer_sources FOR SELECT TO authenticated USING (true);
    END IF;
END
$rls$;

-- A user may edit their own profile but not move it into another business or promote
-- themselves: only the email column is theirs to update (the web app's service role
-- manages membership).
REVOKE UPDATE ON public.profiles FROM anon, authenticated;
GRANT UPDATE (email) ON public.profiles TO authenticated;
