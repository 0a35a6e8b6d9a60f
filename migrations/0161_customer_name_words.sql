-- Console search by any whole word of a customer's name ("hopper" finds "Grace Hopper"),
-- beside the name-prefix index of 0160. A GIN index over the lower-cased words (built-in
-- array operators: no extension needed, so plain PostgreSQL and Supabase alike).
CREATE INDEX IF NOT EXISTS customers_name_words_idx
    ON public.customers USING gin (regexp_split_to_array(lower(name), '\s+'));
