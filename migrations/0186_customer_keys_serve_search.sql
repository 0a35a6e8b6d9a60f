-- Two of customers' unique keys also serve the console's search, and the two search-only
-- indexes they make redundant go.
--
-- Every customer an import inserts updates each index of the table, and customers had ten
-- (measured: each index ~4 us a row of a bulk load's ~40 us; docs/scaling.md). Two pairs
-- indexed the same values in different orders:
-- * UNIQUE (business_id, lower(email)) for the tenant's lookups, and (lower(email)
--   text_pattern_ops) for the operator's prefix search across businesses (0160). One UNIQUE
--   (lower(email) text_pattern_ops, business_id) serves both: text_pattern_ops compares
--   with the same equality, so uniqueness is unchanged, and its order serves "email =, in
--   this business" and "email LIKE 'prefix%'" alike.
-- * UNIQUE (business_id, source, external_id) for the sync's lookups, and (external_id)
--   for the search by id (0160). The key becomes (external_id, business_id, source):
--   ON CONFLICT and the constraint's name do not depend on column order, every lookup of
--   the sync gives all three columns, and, like 0181's key, an index that leads with the
--   id cannot serve "all customers of one business" to a planner with stale statistics.
DO $keys$
BEGIN
    IF pg_get_indexdef('public.customers_business_id_email_key'::regclass)
            NOT LIKE '%text_pattern_ops%' THEN
        DROP INDEX public.customers_business_id_email_key;
        CREATE UNIQUE INDEX customers_business_id_email_key
            ON public.customers (lower(email) text_pattern_ops, business_id)
            WHERE email IS NOT NULL;
    END IF;
    DROP INDEX IF EXISTS public.customers_lower_email_prefix_idx;

    IF (SELECT a.attname FROM pg_constraint k
        JOIN pg_index i ON i.indexrelid = k.conindid
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE k.conrelid = 'public.customers'::regclass
          AND k.conname = 'customers_business_source_external_id_key') <> 'external_id' THEN
        ALTER TABLE public.customers DROP CONSTRAINT customers_business_source_external_id_key;
        ALTER TABLE public.customers ADD CONSTRAINT customers_business_source_external_id_key
            UNIQUE (external_id, business_id, source);
    END IF;
    DROP INDEX IF EXISTS public.customers_external_id_idx;
END
$keys$;
