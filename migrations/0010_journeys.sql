-- The journey engine's own state: why each event did or did not enroll a customer, the
-- exactly-once send ledger on review_requests, review-link tokens and clicks, inbound SMS
-- (STOP), the enrollment archive, and the index the due-steps claim runs on.
-- Idempotent throughout; nothing destructive.

-- Every routing decision, with its reason: "why didn't my customer get a request?"
-- decision = enrolled | skipped; reason is a stable code (already_active, cooldown,
-- review_cap, subscription_inactive, customer_opted_out, customer_archived,
-- customer_deleted, review_requests_not_allowed, unknown_customer, no_active_sequence,
-- historical); detail is a sentence for people.
CREATE TABLE IF NOT EXISTS public.enrollment_decisions (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    business_id       uuid NOT NULL REFERENCES public.businesses (id) ON DELETE CASCADE,
    trigger_event_id  uuid REFERENCES public.trigger_events (id) ON DELETE SET NULL,
    customer_id       uuid REFERENCES public.customers (id) ON DELETE SET NULL,
    sequence_id       uuid REFERENCES public.sequences (id) ON DELETE SET NULL,
    enrollment_id     uuid,   -- no FK: the enrollment may move to the archive
    decision          text NOT NULL CHECK (decision IN ('enrolled', 'skipped')),
    reason            text NOT NULL,
    detail            text,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS enrollment_decisions_customer_idx
    ON public.enrollment_decisions (customer_id, created_at);
CREATE INDEX IF NOT EXISTS enrollment_decisions_event_idx
    ON public.enrollment_decisions (trigger_event_id);
CREATE INDEX IF NOT EXISTS enrollment_decisions_business_idx
    ON public.enrollment_decisions (business_id, created_at);

-- The send ledger. send_key = '<enrollment id>:<step order>' is inserted BEFORE the
-- provider is called; its uniqueness is what makes a send happen at most once.
-- in_flight_since is set while a provider call is under way: a row found with it set
-- by a later worker means the outcome is unknown (never retried blindly).
ALTER TABLE public.review_requests ADD COLUMN IF NOT EXISTS send_key text;
ALTER TABLE public.review_requests ADD COLUMN IF NOT EXISTS sequence_id uuid
    REFERENCES public.sequences (id) ON DELETE SET NULL;
ALTER TABLE public.review_requests ADD COLUMN IF NOT EXISTS step_order integer;
ALTER TABLE public.review_requests ADD COLUMN IF NOT EXISTS purpose text;
ALTER TABLE public.review_requests ADD COLUMN IF NOT EXISTS attempts integer NOT NULL DEFAULT 0;
ALTER TABLE public.review_requests ADD COLUMN IF NOT EXISTS in_flight_since timestamptz;
ALTER TABLE public.review_requests ADD COLUMN IF NOT EXISTS last_error text;
ALTER TABLE public.review_requests ADD COLUMN IF NOT EXISTS review_token text;
ALTER TABLE public.review_requests ADD COLUMN IF NOT EXISTS clicked_at timestamptz;
CREATE UNIQUE INDEX IF NOT EXISTS review_requests_send_key_key
    ON public.review_requests (send_key) WHERE send_key IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS review_requests_review_token_key
    ON public.review_requests (review_token) WHERE review_token IS NOT NULL;
CREATE INDEX IF NOT EXISTS review_requests_enrollment_idx
    ON public.review_requests (enrollment_id);
-- SMS cap per 24 h and the cross-sequence review cap look back per customer.
CREATE INDEX IF NOT EXISTS review_requests_customer_recent_idx
    ON public.review_requests (customer_id, channel, created_at);

-- The due-steps claim: active enrollments of active sequences, oldest due first. The
-- spec's (sequence_id, status, next_step_at) index serves it (sequence_id = ANY(active));
-- this partial index keeps the global "anything due?" probe and retention cheap.
CREATE INDEX IF NOT EXISTS customer_enrollments_due_idx
    ON public.customer_enrollments (next_step_at) WHERE status = 'active';
CREATE INDEX IF NOT EXISTS customer_enrollments_finished_idx
    ON public.customer_enrollments (updated_at) WHERE status <> 'active';

-- Finished enrollments older than journeys.retention_days move here (the spec's
-- "keep completed for 90 days, then archive"); review requests and feedback stay put.
CREATE TABLE IF NOT EXISTS public.customer_enrollments_archive (
    id             uuid PRIMARY KEY,
    business_id    uuid NOT NULL REFERENCES public.businesses (id) ON DELETE CASCADE,
    sequence_id    uuid,
    customer_id    uuid,
    current_step   integer NOT NULL,
    status         text NOT NULL,
    status_reason  text,
    enrolled_at    timestamptz NOT NULL,
    next_step_at   timestamptz,
    metadata       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    archived_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS customer_enrollments_archive_customer_idx
    ON public.customer_enrollments_archive (customer_id);

-- Inbound SMS as received (a STOP opts the customer out of SMS at once).
CREATE TABLE IF NOT EXISTS public.inbound_sms (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    business_id    uuid NOT NULL REFERENCES public.businesses (id) ON DELETE CASCADE,
    customer_id    uuid REFERENCES public.customers (id) ON DELETE SET NULL,
    from_number    text NOT NULL,
    body           text NOT NULL DEFAULT '',
    keyword        text,   -- stop, start, help or null
    provider_id    text,
    received_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS inbound_sms_provider_id_key
    ON public.inbound_sms (provider_id) WHERE provider_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS inbound_sms_customer_idx ON public.inbound_sms (customer_id);

-- Row-level security: readable by the business's users, written by the daemon.
DO $rls$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['enrollment_decisions', 'customer_enrollments_archive',
                             'inbound_sms'] LOOP
        EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE public.%I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('GRANT SELECT ON public.%I TO authenticated', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON public.%I TO service_role', t);
        IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public' AND tablename = t
                       AND policyname = 'business members read') THEN
            EXECUTE format('CREATE POLICY "business members read" ON public.%I FOR SELECT '
                           'TO authenticated '
                           'USING (business_id IN (SELECT public.blipp_user_business_ids()))', t);
        END IF;
    END LOOP;
END
$rls$;
