-- Every contact a source gives, and every identity decision made visible.
--
-- customers.phone stays the primary number and customers.email the primary address (the
-- unique one per business); mobile_phone is the number SMS goes to when there is one, and
-- phones / other_emails keep every further number and address a source gave, so nothing a
-- QuickBooks customer or a Jobber client lists is dropped on the way in.
ALTER TABLE public.customers ADD COLUMN IF NOT EXISTS mobile_phone text;  -- E.164
ALTER TABLE public.customers ADD COLUMN IF NOT EXISTS phones jsonb NOT NULL DEFAULT '[]'::jsonb
    CONSTRAINT customers_phones_array CHECK (jsonb_typeof(phones) = 'array');
ALTER TABLE public.customers ADD COLUMN IF NOT EXISTS other_emails jsonb NOT NULL
    DEFAULT '[]'::jsonb CONSTRAINT customers_other_emails_array
    CHECK (jsonb_typeof(other_emails) = 'array');
-- an inbound STOP from the mobile number must find its customer
CREATE INDEX IF NOT EXISTS customers_business_mobile_phone_idx
    ON public.customers (business_id, mobile_phone) WHERE mobile_phone IS NOT NULL;

-- What a further source id is to its customer: another system's id for the same person
-- (alias), a QuickBooks sub-customer / job site of that person (site), or a second record
-- of the same source that shares the person's email (shared_email). `label` keeps the
-- source record's own name ("0969 Ocean View Road"), shown in the events it brings.
ALTER TABLE public.customer_identities ADD COLUMN IF NOT EXISTS relation text NOT NULL
    DEFAULT 'alias' CONSTRAINT customer_identities_relation_check
    CHECK (relation IN ('alias', 'site', 'shared_email'));
ALTER TABLE public.customer_identities ADD COLUMN IF NOT EXISTS label text;

-- identity_conflicts now lists both what was held back (conflict: an email that belongs to
-- another customer) and what was joined automatically (merged: two records of one source
-- sharing an email became one contactable customer), each resolvable by the operator.
ALTER TABLE public.identity_conflicts ADD COLUMN IF NOT EXISTS kind text NOT NULL
    DEFAULT 'conflict' CONSTRAINT identity_conflicts_kind_check
    CHECK (kind IN ('conflict', 'merged'));
ALTER TABLE public.identity_conflicts ADD COLUMN IF NOT EXISTS resolution text
    CONSTRAINT identity_conflicts_resolution_check
    CHECK (resolution IS NULL OR resolution IN ('kept_apart', 'merged'));
ALTER TABLE public.identity_conflicts ADD COLUMN IF NOT EXISTS details jsonb NOT NULL
    DEFAULT '{}'::jsonb;
CREATE INDEX IF NOT EXISTS identity_conflicts_open_idx
    ON public.identity_conflicts (business_id, created_at) WHERE resolved_at IS NULL;
