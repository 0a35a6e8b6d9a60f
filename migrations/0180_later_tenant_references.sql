-- References added after 0100 follow the same tenant rule.
--
-- 0170 added private_feedback.tech_id / qr_code_id / review_request_id and qr_scans. As in
-- 0100, every reference between two tenant rows becomes a composite key
-- (business_id, <column>) -> parent (business_id, id), so a user of business A cannot
-- point feedback or a scan at B's technician, code or message (nor learn that one of B's
-- ids exists); links that already cross are listed in blippsync.cross_tenant_links and the
-- key is added NOT VALID until they are fixed. The rule now lives in one function, so a
-- later migration that adds a reference calls it instead of repeating it.

CREATE OR REPLACE FUNCTION blippsync.same_business_reference(child text, col text, parent text,
                                                            on_delete text,
                                                            quiet boolean DEFAULT false)
RETURNS void LANGUAGE plpgsql SET search_path = '' AS $$
DECLARE
    action text := CASE on_delete WHEN 'cascade' THEN 'CASCADE'
                                  ELSE format('SET NULL (%I)', col) END;
    fk text := left(child || '_' || col || '_same_business', 63);
    -- the referencing row, as blippsync.cross_tenant_links records it (identities have no id)
    row_key text := CASE WHEN child = 'customer_identities' THEN 'c.customer_id' ELSE 'c.id' END;
    old_fk name;
    crossing bigint;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint WHERE conrelid = ('public.' || parent)::regclass
                   AND conname = parent || '_business_id_id_key') THEN
        EXECUTE format('ALTER TABLE public.%I ADD CONSTRAINT %I UNIQUE (business_id, id)',
                       parent, parent || '_business_id_id_key');
    END IF;
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
    ELSIF NOT quiet THEN  -- quiet: a migration remaking a key whose links were reported before
        RAISE WARNING '%.% has % reference(s) to another business''s %: listed in '
                      'blippsync.cross_tenant_links; constraint % refuses new ones and is '
                      'validated once they are fixed', child, col, crossing, parent, fk;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION blippsync.same_business_reference(text, text, text, text, boolean)
    FROM PUBLIC;

SELECT blippsync.same_business_reference('private_feedback', 'tech_id', 'techs', 'set null');
SELECT blippsync.same_business_reference('private_feedback', 'qr_code_id', 'qr_codes', 'set null');
SELECT blippsync.same_business_reference('private_feedback', 'review_request_id',
                                         'review_requests', 'set null');
SELECT blippsync.same_business_reference('qr_scans', 'qr_code_id', 'qr_codes', 'cascade');
SELECT blippsync.same_business_reference('qr_scans', 'tech_id', 'techs', 'set null');

-- One answer per review request, within its business: a unique key on the request id
-- alone answered "that request already has feedback" for another tenant's id (a unique
-- violation before the reference check).
CREATE UNIQUE INDEX IF NOT EXISTS private_feedback_business_review_request_key
    ON public.private_feedback (business_id, review_request_id)
    WHERE review_request_id IS NOT NULL;
DROP INDEX IF EXISTS public.private_feedback_review_request_key;
