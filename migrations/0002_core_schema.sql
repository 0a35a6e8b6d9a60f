-- The Blipp data model (shared spec data-model.md): every table and key field, with
-- UUID keys, deliberate ON DELETE rules, checks on every enumerated value, timestamps
-- and the spec's indexes. Idempotent: IF NOT EXISTS forms throughout.

CREATE OR REPLACE FUNCTION public.blipp_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- Where a customer or a sequence trigger can come from. A reference table rather than a
-- CHECK list so the enumeration stays enforced while a third-party connector adds its own
-- name without a migration (the plugin host inserts it when the plugin loads).
CREATE TABLE IF NOT EXISTS public.customer_sources (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    builtin     boolean NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO public.customer_sources (name, builtin)
VALUES ('manual', true), ('quickbooks', true), ('jobber', true), ('csv', true)
ON CONFLICT (name) DO NOTHING;

CREATE TABLE IF NOT EXISTS public.businesses (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name                 text NOT NULL CHECK (btrim(name) <> ''),
    created_by           text NOT NULL,  -- the owner's email (text, survives user re-creation)
    google_review_url    text CHECK (google_review_url IS NULL OR google_review_url ~* '^https?://'),
    google_place_id      text,
    stripe_customer_id   text,
    subscription_status  text NOT NULL DEFAULT 'trialing' CHECK (subscription_status IN
                         ('active', 'trialing', 'past_due', 'canceled', 'incomplete',
                          'incomplete_expired', 'unpaid', 'paused')),
    website_url          text,
    phone                text,
    timezone             text NOT NULL DEFAULT 'UTC',   -- IANA name; journeys use local time
    country              text NOT NULL DEFAULT 'US' CHECK (country ~ '^[A-Z]{2}$'),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS businesses_created_by_idx ON public.businesses (lower(created_by));

CREATE TABLE IF NOT EXISTS public.profiles (
    id           uuid PRIMARY KEY REFERENCES auth.users (id) ON DELETE CASCADE,
    email        text,
    business_id  uuid REFERENCES public.businesses (id) ON DELETE SET NULL,
    role         text NOT NULL DEFAULT 'member' CHECK (role IN ('owner', 'admin', 'member')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS profiles_business_id_idx ON public.profiles (business_id);

CREATE TABLE IF NOT EXISTS public.customers (
    id                       uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    business_id              uuid NOT NULL REFERENCES public.businesses (id) ON DELETE CASCADE,
    name                     text,
    email                    text,
    phone                    text,   -- E.164 when it could be normalised
    source                   text NOT NULL DEFAULT 'manual'
                             REFERENCES public.customer_sources (name) ON UPDATE CASCADE,
    external_id              text,
    address                  text,
    opted_out                boolean NOT NULL DEFAULT false,  -- SMS opt-out (STOP)
    tags                     jsonb NOT NULL DEFAULT '[]'::jsonb CHECK (jsonb_typeof(tags) = 'array'),
    -- beyond the spec, for the journey rules: archived or deleted at the source, the
    -- source's own "do not ask for reviews" flag, and where a merged-away customer went
    archived                 boolean NOT NULL DEFAULT false,
    deleted_at               timestamptz,
    review_requests_allowed  boolean NOT NULL DEFAULT true,
    sms_allowed              boolean,
    opted_out_at             timestamptz,
    merged_into_id           uuid REFERENCES public.customers (id) ON DELETE SET NULL,
    created_at               timestamptz NOT NULL DEFAULT now(),
    updated_at               timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT customers_business_source_external_id_key UNIQUE (business_id, source, external_id)
);
-- The spec's customers(business_id, email) lookup index, unique case-insensitively.
CREATE UNIQUE INDEX IF NOT EXISTS customers_business_id_email_key
    ON public.customers (business_id, lower(email)) WHERE email IS NOT NULL;

CREATE TABLE IF NOT EXISTS public.techs (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    business_id  uuid NOT NULL REFERENCES public.businesses (id) ON DELETE CASCADE,
    name         text NOT NULL,
    email        text,
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS techs_business_id_idx ON public.techs (business_id);

CREATE TABLE IF NOT EXISTS public.qr_codes (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    business_id  uuid NOT NULL REFERENCES public.businesses (id) ON DELETE CASCADE,
    code         text NOT NULL UNIQUE,
    tech_id      uuid REFERENCES public.techs (id) ON DELETE SET NULL,
    label        text,
    scan_count   integer NOT NULL DEFAULT 0 CHECK (scan_count >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS qr_codes_business_id_idx ON public.qr_codes (business_id);

CREATE TABLE IF NOT EXISTS public.sequences (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    business_id         uuid NOT NULL REFERENCES public.businesses (id) ON DELETE CASCADE,
    name                text NOT NULL CHECK (btrim(name) <> ''),
    trigger_source      text NOT NULL REFERENCES public.customer_sources (name) ON UPDATE CASCADE,
    trigger_event_type  text NOT NULL CHECK (trigger_event_type ~ '^[a-z][a-z0-9_]{0,62}$'),
    status              text NOT NULL DEFAULT 'draft'
                        CHECK (status IN ('active', 'paused', 'draft', 'archived')),
    flow_definition     jsonb NOT NULL DEFAULT '{}'::jsonb,
    settings            jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(settings) = 'object'),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sequences_business_name_key UNIQUE (business_id, name)
);
CREATE INDEX IF NOT EXISTS sequences_business_id_trigger_event_type_status_idx
    ON public.sequences (business_id, trigger_event_type, status);

CREATE TABLE IF NOT EXISTS public.sequence_steps (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    sequence_id      uuid NOT NULL REFERENCES public.sequences (id) ON DELETE CASCADE,
    step_order       integer NOT NULL CHECK (step_order >= 0),
    step_type        text NOT NULL CHECK (step_type IN ('email', 'sms', 'wait', 'trigger')),
    delay_minutes    integer NOT NULL DEFAULT 0 CHECK (delay_minutes >= 0),
    message_purpose  text CHECK (message_purpose IN
                     ('thank_you', 'follow_up', 'review', 'rebooking', 'retention', 'upsell')),
    message_config   jsonb NOT NULL DEFAULT '{}'::jsonb,
    channel          text CHECK (channel IN ('email', 'sms')),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT sequence_steps_sequence_step_order_key UNIQUE (sequence_id, step_order)
);

CREATE TABLE IF NOT EXISTS public.customer_enrollments (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    sequence_id    uuid NOT NULL REFERENCES public.sequences (id) ON DELETE CASCADE,
    customer_id    uuid NOT NULL REFERENCES public.customers (id) ON DELETE CASCADE,
    current_step   integer NOT NULL DEFAULT 0 CHECK (current_step >= 0),
    status         text NOT NULL DEFAULT 'active'
                   CHECK (status IN ('active', 'completed', 'stopped', 'failed')),
    status_reason  text,
    enrolled_at    timestamptz NOT NULL DEFAULT now(),
    next_step_at   timestamptz,
    metadata       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS customer_enrollments_sequence_id_status_next_step_at_idx
    ON public.customer_enrollments (sequence_id, status, next_step_at);
CREATE INDEX IF NOT EXISTS customer_enrollments_customer_id_idx
    ON public.customer_enrollments (customer_id);
-- A customer is active at most once per sequence.
CREATE UNIQUE INDEX IF NOT EXISTS customer_enrollments_one_active_key
    ON public.customer_enrollments (sequence_id, customer_id) WHERE status = 'active';

CREATE TABLE IF NOT EXISTS public.integrations_quickbooks (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    business_id             uuid NOT NULL REFERENCES public.businesses (id) ON DELETE CASCADE,
    access_token            text,   -- ciphertext only (token vault)
    refresh_token           text,   -- ciphertext only (token vault)
    token_expires_at        timestamptz,
    realm_id                text,
    company_name            text,
    last_customer_sync_at   timestamptz,
    connection_status       text NOT NULL DEFAULT 'connected'
                            CHECK (connection_status IN ('connected', 'token_expired', 'disconnected')),
    status_reason           text,
    previous_refresh_token  text,   -- ciphertext; kept for one retry after a lost response
    refresh_token_expires_at timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT integrations_quickbooks_business_id_key UNIQUE (business_id)
);
CREATE INDEX IF NOT EXISTS integrations_quickbooks_realm_id_idx
    ON public.integrations_quickbooks (realm_id);

CREATE TABLE IF NOT EXISTS public.integrations_jobber (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    business_id             uuid NOT NULL REFERENCES public.businesses (id) ON DELETE CASCADE,
    access_token            text,   -- ciphertext only (token vault)
    refresh_token           text,   -- ciphertext only (token vault)
    token_expires_at        timestamptz,
    account_id              text,
    account_name            text,
    last_customer_sync_at   timestamptz,
    webhook_url             text,
    connection_status       text NOT NULL DEFAULT 'connected'
                            CHECK (connection_status IN ('connected', 'token_expired', 'disconnected')),
    status_reason           text,
    previous_refresh_token  text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT integrations_jobber_business_id_key UNIQUE (business_id)
);
CREATE INDEX IF NOT EXISTS integrations_jobber_account_id_idx
    ON public.integrations_jobber (account_id);

CREATE TABLE IF NOT EXISTS public.private_feedback (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    business_id     uuid NOT NULL REFERENCES public.businesses (id) ON DELETE CASCADE,
    customer_id     uuid REFERENCES public.customers (id) ON DELETE SET NULL,
    customer_email  text,
    customer_name   text,
    rating          integer NOT NULL CHECK (rating BETWEEN 1 AND 5),
    feedback        text,
    source          text NOT NULL CHECK (source IN ('email', 'qr', 'sms')),
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS private_feedback_business_id_idx ON public.private_feedback (business_id);
CREATE INDEX IF NOT EXISTS private_feedback_customer_id_idx ON public.private_feedback (customer_id);

CREATE TABLE IF NOT EXISTS public.review_requests (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    business_id    uuid NOT NULL REFERENCES public.businesses (id) ON DELETE CASCADE,
    -- kept when a customer row goes: review requests are kept for analytics
    customer_id    uuid REFERENCES public.customers (id) ON DELETE SET NULL,
    enrollment_id  uuid REFERENCES public.customer_enrollments (id) ON DELETE SET NULL,
    template_id    uuid,
    status         text NOT NULL DEFAULT 'scheduled'
                   CHECK (status IN ('scheduled', 'sent', 'delivered', 'failed', 'clicked', 'unknown')),
    channel        text NOT NULL CHECK (channel IN ('email', 'sms')),
    sent_at        timestamptz,
    metadata       jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS review_requests_business_id_idx ON public.review_requests (business_id);
CREATE INDEX IF NOT EXISTS review_requests_customer_id_idx ON public.review_requests (customer_id);

-- updated_at maintenance on every table that has one
DO $touch$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['businesses', 'profiles', 'customers', 'techs', 'qr_codes', 'sequences',
                             'sequence_steps', 'customer_enrollments', 'integrations_quickbooks',
                             'integrations_jobber', 'private_feedback', 'review_requests'] LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_trigger WHERE tgname = t || '_touch_updated_at'
                       AND tgrelid = ('public.' || t)::regclass) THEN
            EXECUTE format('CREATE TRIGGER %I BEFORE UPDATE ON public.%I FOR EACH ROW '
                           'EXECUTE FUNCTION public.blipp_touch_updated_at()',
                           t || '_touch_updated_at', t);
        END IF;
    END LOOP;
END
$touch$;
