-- Every reference between two tenant rows stays inside one business.
--
-- Foreign keys are checked without row-level security, so a policy that looks only at a
-- row's own business_id let a user of business A point a row at B's customer, sequence,
-- tech or enrollment (and learn from the error whether one of B's ids exists). Here each
-- such reference becomes a composite key (business_id, <column>) -> parent (business_id,
-- id): a reference across businesses and a reference to nothing fail alike, with the
-- same constraint named. customer_enrollments gains the business_id it lacked, taken
-- from its sequence.
--
-- Forward-only and non-destructive: links that already cross businesses are listed in
-- blippsync.cross_tenant_links (and raised as a WARNING naming the count) instead of
-- failing the migration or being silently rewritten; the constraint is then added NOT
-- VALID, so it still refuses every new crossing, and validated once the links are gone.
-- The daemon refuses to act on a listed link (see docs/architecture.md, Tenancy).
-- ON DELETE SET NULL (<column>) needs PostgreSQL 15 (Supabase, the embedded 16).

CREATE SCHEMA IF NOT EXISTS blippsync;
CREATE TABLE IF NOT EXISTS blippsync.cross_tenant_links (
    id                  bigserial PRIMARY KEY,
    table_name          text NOT NULL,
    column_name         text NOT NULL,
    row_id              uuid NOT NULL,
    business_id         uuid,            -- the row's own business
    referenced_id       uuid NOT NULL,
    referenced_business uuid,            -- the business the referenced row belongs to
    found_by            text NOT NULL,   -- 'migration', or the daemon step that refused it
    found_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT cross_tenant_links_once UNIQUE (table_name, column_name, row_id, referenced_id)
);
REVOKE ALL ON blippsync.cross_tenant_links FROM PUBLIC;

-- customer_enrollments.business_id: the sequence's business, filled on insert so existing
-- writers (the web app, the daemon) need not send it.
ALTER TABLE public.customer_enrollments ADD COLUMN IF NOT EXISTS business_id uuid;
UPDATE public.customer_enrollments e SET business_id = s.business_id
FROM public.sequences s WHERE s.id = e.sequence_id AND e.business_id IS NULL;
ALTER TABLE public.customer_enrollments ALTER COLUMN business_id SET NOT NULL;

CREATE OR REPLACE FUNCTION public.blipp_enrollment_business() RETURNS trigger
LANGUAGE plpgsql SET search_path = '' AS $$
BEGIN
    -- Runs as the caller: a user sees only their own sequences, so another business's
    -- sequence yields NULL and the NOT NULL constraint refuses the row.
    IF NEW.business_id IS NULL THEN
        NEW.business_id := (SELECT s.business_id FROM public.sequences s
                            WHERE s.id = NEW.sequence_id);
    END IF;
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION public.blipp_enrollment_business() FROM PUBLIC;
DO $trigger$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = 'customer_enrollments_business'
                   AND tgrelid = 'public.customer_enrollments'::regclass) THEN
        CREATE TRIGGER customer_enrollments_business BEFORE INSERT OR UPDATE OF sequence_id
            ON public.customer_enrollments FOR EACH ROW
            EXECUTE FUNCTION public.blipp_enrollment_business();
    END IF;
END
$trigger$;
CREATE INDEX IF NOT EXISTS customer_enrollments_business_idx
    ON public.customer_enrollments (business_id);

DO $references$
DECLARE
    -- child table, column, parent table, on delete (cascade | set null)
    ref text[];
    refs text[][] := ARRAY[
        ARRAY['customers', 'merged_into_id', 'customers', 'set null'],
        ARRAY['qr_codes', 'tech_id', 'techs', 'set null'],
        ARRAY['customer_enrollments', 'sequence_id', 'sequences', 'cascade'],
        ARRAY['customer_enrollments', 'customer_id', 'customers', 'cascade'],
        ARRAY['private_feedback', 'customer_id', 'customers', 'set null'],
        ARRAY['review_requests', 'customer_id', 'customers', 'set null'],
        ARRAY['review_requests', 'enrollment_id', 'customer_enrollments', 'set null'],
        ARRAY['review_requests', 'sequence_id', 'sequences', 'set null'],
        ARRAY['identity_conflicts', 'customer_id', 'customers', 'cascade'],
        ARRAY['identity_conflicts', 'conflicting_customer_id', 'customers', 'cascade'],
        ARRAY['identity_conflicts', 'sync_run_id', 'sync_runs', 'set null'],
        ARRAY['sync_runs', 'connection_id', 'connections', 'set null'],
        ARRAY['customer_identities', 'customer_id', 'customers', 'cascade'],
        ARRAY['trigger_events', 'connection_id', 'connections', 'set null'],
        ARRAY['trigger_events', 'customer_id', 'customers', 'set null'],
        ARRAY['enrollment_decisions', 'trigger_event_id', 'trigger_events', 'set null'],
        ARRAY['enrollment_decisions', 'customer_id', 'customers', 'set null'],
        ARRAY['enrollment_decisions', 'sequence_id', 'sequences', 'set null'],
        ARRAY['inbound_sms', 'customer_id', 'customers', 'set null'],
        ARRAY['webhook_deliveries', 'connection_id', 'connections', 'cascade']
    ];
    child text; col text; parent text; action text; fk text; old_fk name;
    crossing bigint; row_key text;
BEGIN
    FOREACH ref SLICE 1 IN ARRAY refs LOOP
        child := ref[1]; col := ref[2]; parent := ref[3];
        action := CASE ref[4] WHEN 'cascade' THEN 'CASCADE'
                              ELSE format('SET NULL (%I)', col) END;
        fk := left(child || '_' || col || '_same_business', 63);

        -- the parent's (business_id, id) key the composite reference points at
        IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = ('public.' || parent)::regclass
                       AND conname = parent || '_business_id_id_key') THEN
            EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I UNIQUE (business_id, id)',
                           parent, parent || '_business_id_id_key');
        END IF;

        -- report what already crosses businesses
        row_key := CASE WHEN child = 'customer_identities' THEN 'c.customer_id' ELSE 'c.id' END;
        EXECUTE format(
            'INSERT INTO blippsync.cross_tenant_links (table_name, column_name, row_id, '
            '    business_id, referenced_id, referenced_business, found_by) '
            'SELECT %L, %L, %s, c.business_id, c.%I, p.business_id, ''migration'' '
            'FROM public.%I c JOIN public.%I p ON p.id = c.%I '
            'WHERE p.business_id IS DISTINCT FROM c.business_id AND c.business_id IS NOT NULL '
            'ON CONFLICT ON CONSTRAINT cross_tenant_links_once DO NOTHING',
            child, col, row_key, col, child, parent, col);
        EXECUTE format('SELECT count(*) FROM public.%I c JOIN public.%I p ON p.id = c.%I '
                       'WHERE p.business_id IS DISTINCT FROM c.business_id '
                       'AND c.business_id IS NOT NULL', child, parent, col) INTO crossing;

        -- replace the single-column key: two constraints failing differently would tell
        -- "exists elsewhere" from "does not exist"
        FOR old_fk IN
            SELECT c.conname FROM pg_constraint c
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
            WHERE c.conrelid = ('public.' || child)::regclass AND c.contype = 'f'
              AND cardinality(c.conkey) = 1 AND a.attname = col
        LOOP
            EXECUTE format('ALTER TABLE public.%I DROP CONSTRAINT %I', child, old_fk);
        END LOOP;
        IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = ('public.' || child)::regclass
                       AND conname = fk) THEN
            EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I FOREIGN KEY (business_id, %I) '
                           'REFERENCES public.%I (business_id, id) ON DELETE %s NOT VALID',
                           child, fk, col, parent, action);
        END IF;
        IF crossing = 0 THEN
            EXECUTE format('ALTER TABLE public.%I VALIDATE CONSTRAINT %I', child, fk);
        ELSE
            RAISE WARNING '%.% has % reference(s) to another business''s %: listed in '
                          'blippsync.cross_tenant_links; constraint % refuses new ones and is '
                          'validated once they are fixed', child, col, crossing, parent, fk;
        END IF;
    END LOOP;
END
$references$;
