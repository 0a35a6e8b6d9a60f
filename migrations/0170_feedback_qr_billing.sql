-- What the hosted feedback pages, QR codes and the billing connector need beyond the
-- seed's tables (techs, qr_codes, private_feedback, businesses.subscription_status).
-- Idempotent; nothing destructive.

-- A code can be retired (a lost truck magnet) without losing its scans: its page then
-- answers a friendly 404.
ALTER TABLE public.qr_codes ADD COLUMN IF NOT EXISTS active boolean NOT NULL DEFAULT true;

-- One row per counted scan, for charts ("scans per week per technician"); scan_count on
-- qr_codes stays the running total the web app shows.
CREATE TABLE IF NOT EXISTS public.qr_scans (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    business_id  uuid NOT NULL REFERENCES public.businesses (id) ON DELETE CASCADE,
    qr_code_id   uuid NOT NULL REFERENCES public.qr_codes (id) ON DELETE CASCADE,
    tech_id      uuid REFERENCES public.techs (id) ON DELETE SET NULL,
    scanned_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS qr_scans_code_time_idx ON public.qr_scans (qr_code_id, scanned_at);
CREATE INDEX IF NOT EXISTS qr_scans_business_time_idx ON public.qr_scans (business_id, scanned_at);

-- Where a piece of feedback came from: the technician (from a QR code or the job), the
-- code scanned, or the review request whose link was followed.
ALTER TABLE public.private_feedback ADD COLUMN IF NOT EXISTS tech_id uuid
    REFERENCES public.techs (id) ON DELETE SET NULL;
ALTER TABLE public.private_feedback ADD COLUMN IF NOT EXISTS qr_code_id uuid
    REFERENCES public.qr_codes (id) ON DELETE SET NULL;
ALTER TABLE public.private_feedback ADD COLUMN IF NOT EXISTS review_request_id uuid
    REFERENCES public.review_requests (id) ON DELETE SET NULL;
CREATE INDEX IF NOT EXISTS private_feedback_tech_id_idx ON public.private_feedback (tech_id);

-- The ordering key of the last billing status applied (the billing event's or the
-- reconciliation listing's time): an older, late or retried delivery never overwrites a
-- newer status. Written by the daemon only (0005 already keeps subscription_status from
-- the web app's users; this column is not granted to them either).
ALTER TABLE public.businesses ADD COLUMN IF NOT EXISTS subscription_status_at timestamptz;

-- Feedback given on the hosted pages is a trigger source of its own: a sequence with
-- trigger_source 'feedback' and trigger_event_type 'feedback_received' reacts to it.
INSERT INTO public.customer_sources (name, builtin) VALUES ('feedback', true)
ON CONFLICT (name) DO NOTHING;

-- The key that signs the hosted pages' anti-forgery (CSRF) tokens: one per database, so
-- every replica behind a load balancer accepts the others' forms. Daemon-only schema.
CREATE SCHEMA IF NOT EXISTS blippsync;
CREATE TABLE IF NOT EXISTS blippsync.form_keys (
    id          integer PRIMARY KEY CHECK (id = 1),
    secret      bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE public.qr_scans ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.qr_scans FORCE ROW LEVEL SECURITY;
GRANT SELECT ON public.qr_scans TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.qr_scans TO service_role;
DO $rls$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public'
                   AND tablename = 'qr_scans' AND policyname = 'business members read') THEN
        CREATE POLICY "business members read" ON public.qr_scans FOR SELECT
            TO authenticated USING (business_id IN (SELECT public.blipp_user_business_ids()));
    END IF;
END
$rls$;

-- One answer per review request: a second submission (a changed mind, a double tap)
-- updates it instead of counting twice.
CREATE UNIQUE INDEX IF NOT EXISTS private_feedback_review_request_key
    ON public.private_feedback (review_request_id) WHERE review_request_id IS NOT NULL;
