-- What `blippsync run` needs: the webhook inbox, and the daemons' own bookkeeping.

-- The webhook inbox: one row per change a verified delivery announced, keyed so that a
-- redelivery is recognised (QuickBooks CloudEvents id; Jobber topic+itemId+occurredAt;
-- a hash of the body otherwise). The HTTP endpoint only inserts; a daemon holding the
-- connection's lease turns pending rows into targeted fetches.
CREATE TABLE IF NOT EXISTS public.webhook_deliveries (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    connector        text NOT NULL,
    dedupe_key       text NOT NULL,
    account_id       text NOT NULL DEFAULT '',
    connection_id    uuid REFERENCES public.connections (id) ON DELETE CASCADE,
    business_id      uuid REFERENCES public.businesses (id) ON DELETE CASCADE,
    entity           text NOT NULL DEFAULT '',
    entity_id        text NOT NULL DEFAULT '',
    operation        text NOT NULL DEFAULT '',
    occurred_at      timestamptz,
    notice           jsonb NOT NULL DEFAULT '{}'::jsonb,
    state            text NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'processed', 'unmatched', 'failed')),
    attempts         integer NOT NULL DEFAULT 0,
    redeliveries     integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    last_error       text,
    received_at      timestamptz NOT NULL DEFAULT now(),
    processed_at     timestamptz,
    CONSTRAINT webhook_deliveries_connector_dedupe_key UNIQUE (connector, dedupe_key)
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_pending_idx
    ON public.webhook_deliveries (connection_id, next_attempt_at) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS webhook_deliveries_processed_idx
    ON public.webhook_deliveries (connection_id, occurred_at) WHERE state = 'processed';
CREATE INDEX IF NOT EXISTS webhook_deliveries_received_idx
    ON public.webhook_deliveries (received_at);

ALTER TABLE public.webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.webhook_deliveries FORCE ROW LEVEL SECURITY;
GRANT SELECT ON public.webhook_deliveries TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.webhook_deliveries TO service_role;
DO $rls$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_policies WHERE schemaname = 'public'
                   AND tablename = 'webhook_deliveries' AND policyname = 'business members read') THEN
        CREATE POLICY "business members read" ON public.webhook_deliveries FOR SELECT
            TO authenticated USING (business_id IN (SELECT public.blipp_user_business_ids()));
    END IF;
END
$rls$;

-- Leases are claimed among connections that are due or have webhook work waiting.
CREATE INDEX IF NOT EXISTS connections_lease_owner_idx ON public.connections (lease_owner)
    WHERE lease_owner IS NOT NULL;

-- The daemons' own state lives outside public (not tenant data, not exposed by the API).
CREATE SCHEMA IF NOT EXISTS blippsync;

-- One row per daemon process: seen by `status` and /healthz on every replica.
CREATE TABLE IF NOT EXISTS blippsync.daemons (
    id            text PRIMARY KEY,
    hostname      text NOT NULL,
    pid           integer NOT NULL,
    version       text NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    last_tick_at  timestamptz NOT NULL DEFAULT now(),
    stopped_at    timestamptz,
    details       jsonb NOT NULL DEFAULT '{}'::jsonb
);

-- Periodic tasks that must run once per period across all replicas (reconciliation,
-- retention): claimed like connections, with a lease that a crashed daemon lets expire.
CREATE TABLE IF NOT EXISTS blippsync.daemon_tasks (
    name              text PRIMARY KEY,
    last_started_at   timestamptz,
    last_finished_at  timestamptz,
    last_error        text,
    lease_owner       text,
    lease_expires_at  timestamptz
);
