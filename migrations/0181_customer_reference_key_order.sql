-- The key that same-business references to a customer point at is (id, business_id), not
-- (business_id, id).
--
-- 0100 added UNIQUE (business_id, id) on customers as the target of the composite
-- references. Its first column is business_id, so while a business's statistics lag
-- behind a first big import (the planner believes it holds a handful of customers) the
-- batch statements used it with business_id alone and filtered every customer of the
-- business for each staged row: a quadratic import (tests/test_batch_plans.py, stale
-- statistics). A foreign key may point at a unique index whose columns are the referenced
-- ones in any order, and an index led by id cannot serve "all rows of one business". The
-- constraint keeps its name, so blippsync.same_business_reference finds it.
DO $reorder$
DECLARE
    first_column name;
    r record;
    refs text[][] := ARRAY[]::text[][];
    ref text[];
BEGIN
    SELECT a.attname INTO first_column
    FROM pg_constraint k
    JOIN pg_index i ON i.indexrelid = k.conindid
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
    WHERE k.conrelid = 'public.customers'::regclass AND k.conname = 'customers_business_id_id_key';
    IF first_column IS DISTINCT FROM 'business_id' THEN
        RETURN;  -- already (id, business_id), or never made
    END IF;
    -- every composite reference to a customer: its table, its customer column, its action
    FOR r IN
        SELECT cl.relname AS child, a.attname AS col,
               CASE f.confdeltype WHEN 'c' THEN 'cascade' ELSE 'set null' END AS action
        FROM pg_constraint f
        JOIN pg_class cl ON cl.oid = f.conrelid
        JOIN pg_attribute a ON a.attrelid = f.conrelid AND a.attnum = ANY (f.conkey)
        WHERE f.contype = 'f' AND f.confrelid = 'public.customers'::regclass
          AND cardinality(f.conkey) = 2 AND a.attname <> 'business_id'
        ORDER BY cl.relname, a.attname
    LOOP
        refs := refs || ARRAY[ARRAY[r.child::text, r.col::text, r.action]];
    END LOOP;
    ALTER TABLE public.customers DROP CONSTRAINT customers_business_id_id_key CASCADE;
    CREATE UNIQUE INDEX customers_id_business_id_key ON public.customers (id, business_id);
    ALTER TABLE public.customers ADD CONSTRAINT customers_business_id_id_key
        UNIQUE USING INDEX customers_id_business_id_key;
    FOREACH ref SLICE 1 IN ARRAY refs LOOP
        PERFORM blippsync.same_business_reference(ref[1], ref[2], 'customers', ref[3], true);
    END LOOP;
END
$reorder$;
