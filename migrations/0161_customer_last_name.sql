-- Console search by the last word of a customer's name ("hopper" or "hop" finds
-- "Grace Hopper"), beside the whole-name prefix index of 0160. A btree expression index:
-- its statistics and range scans stay cheap and predictable under the search's LIMIT.
CREATE INDEX IF NOT EXISTS customers_last_name_prefix_idx
    ON public.customers (lower(substring(name FROM '(\S+)\s*$')) text_pattern_ops);
