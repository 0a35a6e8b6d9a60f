-- What the operator console (issue 16) reads, each served by an index so a page stays
-- fast with millions of customers. Idempotent; nothing destructive.

-- Customer search: by name or email prefix (case-insensitive), phone, external id. Not
-- scoped by business so an operator can find a customer from the overview; a business's
-- own search filters the same index scan.
CREATE INDEX IF NOT EXISTS customers_lower_name_prefix_idx
    ON public.customers (lower(name) text_pattern_ops);
CREATE INDEX IF NOT EXISTS customers_lower_email_prefix_idx
    ON public.customers (lower(email) text_pattern_ops);
CREATE INDEX IF NOT EXISTS customers_phone_idx
    ON public.customers (phone) WHERE phone IS NOT NULL;
CREATE INDEX IF NOT EXISTS customers_external_id_idx
    ON public.customers (external_id) WHERE external_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS customer_identities_external_id_idx
    ON public.customer_identities (external_id);

-- Recent messages of a business, messages per day, messages whose outcome is unknown.
CREATE INDEX IF NOT EXISTS review_requests_business_created_idx
    ON public.review_requests (business_id, created_at);
CREATE INDEX IF NOT EXISTS review_requests_created_idx
    ON public.review_requests (created_at);
CREATE INDEX IF NOT EXISTS review_requests_unknown_idx
    ON public.review_requests (created_at) WHERE status = 'unknown';

-- Sync runs per day across every business.
CREATE INDEX IF NOT EXISTS sync_runs_started_idx ON public.sync_runs (started_at);
