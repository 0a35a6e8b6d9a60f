-- Messages that mail providers, carriers and recipients accept (issue 14): the business's
-- postal address and sender identity for email, a per-customer email opt-out (one-click
-- unsubscribe), the recipient's own time zone when known, delivery outcomes reported by
-- the provider (delivered / undelivered / failed with the carrier's error code), numbers
-- carriers say can never take an SMS, and the key that signs unsubscribe links.
-- Idempotent throughout; nothing destructive.

-- CAN-SPAM: commercial email carries the sender's valid physical postal address.
ALTER TABLE public.businesses ADD COLUMN IF NOT EXISTS postal_address text;
-- Sender identity per business. email_from_address must be on a domain the deployment may
-- send for (SPF/DKIM), so only the service role sets it; Reply-To is the owner's choice.
ALTER TABLE public.businesses ADD COLUMN IF NOT EXISTS email_from_address text;
ALTER TABLE public.businesses ADD COLUMN IF NOT EXISTS email_reply_to text;
GRANT INSERT (postal_address, email_reply_to) ON public.businesses TO authenticated;
GRANT UPDATE (postal_address, email_reply_to) ON public.businesses TO authenticated;

-- Email opt-out, apart from the SMS one (opted_out / sms_allowed): unsubscribing from email
-- (List-Unsubscribe, the link in every email) stops email only.
ALTER TABLE public.customers ADD COLUMN IF NOT EXISTS email_opted_out boolean NOT NULL DEFAULT false;
ALTER TABLE public.customers ADD COLUMN IF NOT EXISTS email_opted_out_at timestamptz;
-- The customer's own IANA time zone, when the source or the web app knows it; otherwise
-- quiet hours derive the zone from the phone number.
ALTER TABLE public.customers ADD COLUMN IF NOT EXISTS timezone text;

-- Delivery outcomes: 'undelivered' (the carrier could not deliver) joins the spec's statuses.
-- Replaced only when it lacks it, so a re-run neither locks nor scans the table.
DO $status$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conrelid = 'public.review_requests'::regclass
                     AND conname = 'review_requests_status_check'
                     AND pg_get_constraintdef(oid) LIKE '%undelivered%') THEN
        ALTER TABLE public.review_requests DROP CONSTRAINT IF EXISTS review_requests_status_check;
        ALTER TABLE public.review_requests ADD CONSTRAINT review_requests_status_check
            CHECK (status IN ('scheduled', 'sent', 'delivered', 'undelivered', 'failed', 'clicked',
                              'unknown'));
    END IF;
END
$status$;
ALTER TABLE public.review_requests ADD COLUMN IF NOT EXISTS error_code text;
ALTER TABLE public.review_requests ADD COLUMN IF NOT EXISTS status_updated_at timestamptz;
-- Status callbacks name the provider's message id (Twilio's MessageSid).
CREATE INDEX IF NOT EXISTS review_requests_provider_id_idx
    ON public.review_requests ((metadata ->> 'provider_id'))
    WHERE metadata ? 'provider_id';
-- `messages list` and `status`: newest first per business, failures counted.
CREATE INDEX IF NOT EXISTS review_requests_business_created_idx
    ON public.review_requests (business_id, created_at);

CREATE SCHEMA IF NOT EXISTS blippsync;

-- Numbers a carrier said can never receive our SMS (21610 unsubscribed at the carrier,
-- 30005 unknown number, 30006 landline...). One sending number serves every business, so
-- a suppression is per number, not per customer row.
CREATE TABLE IF NOT EXISTS blippsync.sms_suppressions (
    phone       text PRIMARY KEY,
    error_code  text NOT NULL,
    reason      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- The key that signs unsubscribe links: made once per database so every replica agrees and
-- nothing needs configuring (two random UUIDs: 244 random bits).
CREATE TABLE IF NOT EXISTS blippsync.signing_keys (
    purpose     text PRIMARY KEY,
    secret      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO blippsync.signing_keys (purpose, secret)
VALUES ('unsubscribe', encode(uuid_send(gen_random_uuid()) || uuid_send(gen_random_uuid()), 'hex'))
ON CONFLICT (purpose) DO NOTHING;
REVOKE ALL ON blippsync.sms_suppressions, blippsync.signing_keys FROM PUBLIC;
