-- Tables the daemon needs and the spec lacks.

-- Every connection of a business to a connector: its cursor, its health, its lease, and,
-- for plugin connectors that are neither QuickBooks nor Jobber, its encrypted credentials
-- and settings, so a third-party connector never needs a migration of its own.
-- (QuickBooks and Jobber keep their tokens in the spec's integrations_* tables, which the
-- web app also writes; their row here carries the sync state.)
CREATE TABLE IF NOT EXISTS public.connections (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    business_id           uuid NOT NULL REFERENCES public.businesses (id) ON DELETE CASCADE,
    connector             text NOT NULL REFERENCES public.customer_sources (name) ON UPDATE CASCADE,
    account_id            text NOT NULL DEFAULT '',   -- realm id, Jobber account id; '' if one per business
    status                text NOT NULL DEFAULT 'connected'
                          CHECK (status IN ('connected', 'token_expired', 'disconnected')),
    status_reason         text,
    settings              jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(settings) = 'object'),
    credentials           text,          -- ciphertext of a JSON object (token vault), plugins only
    previous_credentials  text,          -- ciphertext; one retry after a lost refresh response
    token_expires_at      timestamptz,
    cursor                jsonb,         -- the connector's checkpoint, committed with its records
    cursor_updated_at     timestamptz,
    sync_interval_seconds integer CHECK (sync_interval_seconds IS NULL OR sync_interval_seconds > 0),
    next_sync_at          timestamptz NOT NULL DEFAULT now(),
    last_sync_at          timestamptz,
    last_success_at       timestamptz,
    last_error            text,
    last_error_at         timestamptz,
    consecutive_failures  integer NOT NULL DEFAULT 0,
    lease_owner           text,
    lease_expires_at      timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT connections_business_connector_account_key UNIQUE (business_id, connector, account_id)
);
CREATE INDEX IF NOT EXISTS connections_due_idx ON public.connections (next_sync_at)
    WHERE status = 'connected';

-- One row per sync pass of a connection: what it did, how long it took, how it ended.
CREATE TABLE IF NOT EXISTS public.sync_runs (
    id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    business_id          uuid NOT NULL REFERENCES public.businesses (id) ON DELETE CASCADE,
    connection_id        uuid REFERENCES public.connections (id) ON DELETE SET NULL,
    connector            text NOT NULL,
    status               text NOT NULL DEFAULT 'running'
                         CHECK (status IN ('running', 'succeeded', 'failed', 'interrupted')),
    full_sync            boolean NOT NULL DEFAULT false,
    started_at           timestamptz NOT NULL DEFAULT now(),
    finished_at          timestamptz,
    customers_created    integer NOT NULL DEFAULT 0,
    customers_updated    integer NOT NULL DEFAULT 0,
    customers_unchanged  integer NOT NULL DEFAULT 0,
    customers_rejected   integer NOT NULL DEFAULT 0,
    events_emitted       integer NOT NULL DEFAULT 0,
    events_historical    integer NOT NULL DEFAULT 0,
    events_duplicate     integer NOT NULL DEFAULT 0,
    duration_ms          integer,
    error                text,
    details              jsonb NOT NULL DEFAULT '{}'::jsonb,  -- rejected rows, conflicts, notes
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS sync_runs_connection_started_idx
    ON public.sync_runs (connection_id, started_at DESC);
CREATE INDEX IF NOT EXISTS sync_runs_business_started_idx
    ON public.sync_runs (business_id, started_at DESC);

-- The further source ids of a customer: customers.(source, external_id) holds the first
-- one, this table every other (the same person from QuickBooks and from a CSV stays one
-- customer carrying both ids), and the ids of customers merged into it.
CREATE TABLE IF NOT EXISTS public.customer_identities (
    business_id    uuid NOT NULL REFERENCES public.businesses (id) ON DELETE CASCADE,
    source         text NOT NULL REFERENCES public.customer_sources (name) ON UPDATE CASCADE,
    external_id    text NOT NULL,
    customer_id    uuid NOT NULL REFERENCES public.customers (id) ON DELETE CASCADE,
    first_seen_at  timestamptz NOT NULL DEFAULT now(),
    last_seen_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (business_id, source, external_id)
);
CREATE INDEX IF NOT EXISTS customer_identities_customer_id_idx
    ON public.customer_identities (customer_id);

-- A record whose identity could not be resolved without overwriting another customer
-- (its email belongs to someone else): recorded here, never applied silently.
CREATE TABLE IF NOT EXISTS public.identity_conflicts (
    id                     uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    business_id            uuid NOT NULL REFERENCES public.businesses (id) ON DELETE CASCADE,
    source                 text NOT NULL,
    external_id            text NOT NULL,
    customer_id            uuid REFERENCES public.customers (id) ON DELETE CASCADE,
    conflicting_customer_id uuid REFERENCES public.customers (id) ON DELETE CASCADE,
    field                  text NOT NULL,
    value                  text,
    reason                 text NOT NULL,
    sync_run_id            uuid REFERENCES public.sync_runs (id) ON DELETE SET NULL,
    resolved_at            timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT identity_conflicts_once_key UNIQUE (business_id, source, external_id, field, value)
);

-- The trigger-event outbox: one row per real business fact, deduplicated by its key;
-- the journey engine claims pending rows and routes them into enrollments.
CREATE TABLE IF NOT EXISTS public.trigger_events (
    id                    uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    business_id           uuid NOT NULL REFERENCES public.businesses (id) ON DELETE CASCADE,
    connection_id         uuid REFERENCES public.connections (id) ON DELETE SET NULL,
    source                text NOT NULL REFERENCES public.customer_sources (name) ON UPDATE CASCADE,
    event_type            text NOT NULL CHECK (event_type ~ '^[a-z][a-z0-9_]{0,62}$'),
    customer_id           uuid REFERENCES public.customers (id) ON DELETE SET NULL,
    external_customer_id  text,
    occurred_at           timestamptz NOT NULL,
    payload               jsonb NOT NULL DEFAULT '{}'::jsonb,
    dedupe_key            text NOT NULL,   -- e.g. quickbooks:<realm>:invoice:<id>:paid
    historical            boolean NOT NULL DEFAULT false,  -- backfilled: never enrolls anyone
    routing_state         text NOT NULL DEFAULT 'pending'
                          CHECK (routing_state IN ('pending', 'routed', 'historical', 'failed')),
    routed_at             timestamptz,
    routing_error         text,
    created_at            timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT trigger_events_dedupe_key UNIQUE (business_id, dedupe_key)
);
CREATE INDEX IF NOT EXISTS trigger_events_pending_idx ON public.trigger_events (created_at)
    WHERE routing_state = 'pending';
CREATE INDEX IF NOT EXISTS trigger_events_customer_idx ON public.trigger_events (customer_id);
