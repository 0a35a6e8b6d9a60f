-- 0102's id trigger fires only for the API roles it acts on.
--
-- The trigger function did nothing for any other role, but PostgreSQL still called it for
-- every row the daemon writes: a PL/pgSQL call per inserted customer, measured at about a
-- quarter of a bulk load's cost on a customers table (bench/bench_csv_import.py; docs/
-- scaling.md). A WHEN condition is evaluated by the executor without entering PL/pgSQL,
-- so the trigger is now skipped at no cost for the daemon and still rewrites (or refuses)
-- the id for `authenticated` and `anon`. The function keeps its own check, so calling it
-- directly, or a trigger made by 0102 that is not yet replaced, behaves the same.
DO $ids$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['customers', 'techs', 'qr_codes', 'private_feedback',
                             'customer_enrollments', 'sequences', 'sequence_steps'] LOOP
        IF to_regclass('public.' || t) IS NULL THEN
            CONTINUE;
        END IF;
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON public.%I', t || '_generated_id', t);
        EXECUTE format('CREATE TRIGGER %I BEFORE INSERT OR UPDATE OF id ON public.%I '
                       'FOR EACH ROW WHEN (current_user IN (''authenticated'', ''anon'')) '
                       'EXECUTE FUNCTION public.blipp_generated_id()', t || '_generated_id', t);
    END LOOP;
END
$ids$;
