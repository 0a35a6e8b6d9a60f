-- Ids are the database's, whatever columns later migrations add.
--
-- 0101 kept users from choosing an id with column privileges (a chosen id that another
-- tenant's row has fails with a unique violation where a fresh one succeeds: an existence
-- oracle). Column privileges miss every column a later migration adds, so the users' tables
-- get their table-level INSERT/UPDATE back and a trigger does the job instead: for the API
-- roles an inserted row always gets a fresh id, and changing an id is refused.

CREATE OR REPLACE FUNCTION public.blipp_generated_id() RETURNS trigger
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    IF current_user IN ('authenticated', 'anon') THEN
        IF TG_OP = 'INSERT' THEN
            NEW.id := gen_random_uuid();
        ELSIF NEW.id IS DISTINCT FROM OLD.id THEN
            RAISE EXCEPTION 'a row''s id is not yours to change' USING ERRCODE = '42501';
        END IF;
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION public.blipp_generated_id() FROM PUBLIC, anon;

DO $ids$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['customers', 'techs', 'qr_codes', 'private_feedback',
                             'customer_enrollments', 'sequences', 'sequence_steps'] LOOP
        EXECUTE format('GRANT INSERT, UPDATE ON public.%I TO authenticated', t);
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = t || '_generated_id'
                       AND tgrelid = ('public.' || t)::regclass) THEN
            EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE OF id ON public.%I '
                           'FOR EACH ROW EXECUTE FUNCTION public.blipp_generated_id()',
                           t || '_generated_id', t);
        END IF;
    END LOOP;
END
$ids$;
