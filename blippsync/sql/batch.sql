-- Writing one batch of connector records: customers staged with COPY, then resolved and
-- merged set-wise; events inserted once per dedupe key. Every statement runs inside the
-- batch's transaction, with :business_id and :source fixed for the batch.

-- name: create_customer_stage
CREATE TEMP TABLE IF NOT EXISTS blipp_stage_customers (
    seq            integer NOT NULL,
    new_id         uuid NOT NULL,   -- the id a new customer gets (time-ordered: see ids.py)
    external_id    text NOT NULL,
    name           text,
    email          text,
    phone          text,
    address        text,
    tags           jsonb,
    archived       boolean,
    deleted        boolean NOT NULL DEFAULT false,
    review_ok      boolean,
    sms_allowed    boolean,
    customer_id    uuid,
    matched        text,            -- key | alias | email; NULL: a new customer
    current_email  text,
    email_ok       boolean NOT NULL DEFAULT true,
    conflict_with  uuid,
    email_holder   uuid,            -- the customer that already has this email, if any
    email_seen     boolean NOT NULL DEFAULT false  -- an earlier row of the batch had it too
) WITH (fillfactor = 50) ON COMMIT DELETE ROWS  -- room for HOT updates of the resolution columns

-- name: create_event_stage
CREATE TEMP TABLE IF NOT EXISTS blipp_stage_events (
    event_type            text NOT NULL,
    dedupe_key            text NOT NULL,
    external_customer_id  text NOT NULL,
    occurred_at           timestamptz NOT NULL,
    payload               jsonb NOT NULL,
    historical            boolean NOT NULL
) ON COMMIT DELETE ROWS

-- name: clear_stages
TRUNCATE blipp_stage_customers, blipp_stage_events

-- name: no_hash_joins
-- A batch is a few thousand rows probing tables of millions: every join here is an index
-- lookup per staged row. Left to itself the planner hash-joins against a scan of all the
-- business's customers on every batch (measured: 10x slower at 300k customers, and worse
-- while a bulk load has left the table's statistics behind), so the batch's transaction
-- plans with index nested loops only.
-- Nested loops alone are not enough: a business's row estimate is wrong exactly while it
-- grows (a first import), and a planner that believes it holds one row scans "all its
-- customers" once and compares it with every staged row. So every statement below looks
-- public rows up by a full unique key per staged row (scalar subqueries, or a primary key
-- join whose business filter cannot serve as an index path): a batch costs the same
-- whatever is stored. tests/test_batch_plans.py holds every statement to that.
SET LOCAL enable_hashjoin = off

-- name: no_merge_joins
SET LOCAL enable_mergejoin = off

-- name: index_stage_seq
-- with nested loops only, the staged rows' own joins need these
CREATE INDEX IF NOT EXISTS blipp_stage_customers_seq ON blipp_stage_customers (seq)

-- name: index_stage_email
CREATE INDEX IF NOT EXISTS blipp_stage_customers_email ON blipp_stage_customers (email)

-- name: resolve_by_key
-- 1. the customer this source created under this id (customers keeps its first source id);
--    written as a per-row subquery so each staged row is one index lookup
--    (rows with no match are not rewritten: a first import costs one probe a row here)
UPDATE blipp_stage_customers s
SET (customer_id, current_email, matched) = (
    SELECT coalesce(c.merged_into_id, c.id), c.email, 'key' FROM public.customers c
    WHERE c.business_id = :business_id AND c.source = :source AND c.external_id = s.external_id)
WHERE (SELECT true FROM public.customers c   -- a scalar subquery: never turned into a join
       WHERE c.business_id = :business_id AND c.source = :source AND c.external_id = s.external_id)

-- name: resolve_by_alias
-- 2. an id of this source recorded on a customer that came from elsewhere
UPDATE blipp_stage_customers s
SET (customer_id, current_email, matched) = (
    SELECT c.id, c.email, 'alias'
    FROM public.customer_identities i JOIN public.customers c ON c.id = i.customer_id
    WHERE i.business_id = :business_id AND i.source = :source AND i.external_id = s.external_id)
WHERE s.customer_id IS NULL
  AND (SELECT true FROM public.customer_identities i
       WHERE i.business_id = :business_id AND i.source = :source AND i.external_id = s.external_id)

-- name: find_email_holders
-- who already has the email of each unresolved row (one lookup a row, none rewritten
-- when nobody has it)
UPDATE blipp_stage_customers s
SET email_holder = (SELECT c.id FROM public.customers c
                    WHERE c.business_id = :business_id AND lower(c.email) = s.email LIMIT 1)
WHERE s.customer_id IS NULL AND s.email IS NOT NULL
  AND (SELECT true FROM public.customers c
       WHERE c.business_id = :business_id AND lower(c.email) = s.email LIMIT 1)

-- name: resolve_by_email
-- 3. the same email on a customer this source has not claimed under another id: the
--    same person arriving from another system
UPDATE blipp_stage_customers s SET customer_id = c.id, matched = 'email', current_email = c.email
FROM public.customers c
WHERE s.customer_id IS NULL AND s.email_holder IS NOT NULL AND c.id = s.email_holder
  AND NOT (c.source = :source AND c.external_id IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM public.customer_identities i
                  WHERE i.customer_id = c.id AND i.source = :source)

-- name: unmatch_email_duplicates
-- two ids of this source matched one customer by email: only the first is that person
UPDATE blipp_stage_customers s SET customer_id = NULL, matched = NULL
FROM (SELECT seq, row_number() OVER (PARTITION BY customer_id ORDER BY seq) AS rn
      FROM blipp_stage_customers WHERE matched = 'email') d
WHERE s.seq = d.seq AND d.rn > 1

-- name: find_email_conflicts
-- an email that already belongs to another customer is not taken from them: a new row
-- whose email has a holder, or a known customer whose email would change to a taken one
-- (an unchanged re-import costs nothing here)
UPDATE blipp_stage_customers s
SET conflict_with = (SELECT c.id FROM public.customers c
                     WHERE c.business_id = :business_id AND lower(c.email) = s.email
                       AND c.id <> s.customer_id
                     LIMIT 1)
WHERE s.customer_id IS NOT NULL AND s.email IS NOT NULL
  AND s.email IS DISTINCT FROM lower(s.current_email)
  AND (SELECT true FROM public.customers c
       WHERE c.business_id = :business_id AND lower(c.email) = s.email
         AND c.id <> s.customer_id LIMIT 1)

-- name: mark_email_conflicts
UPDATE blipp_stage_customers SET email_ok = false,
       conflict_with = coalesce(conflict_with, email_holder)
WHERE conflict_with IS NOT NULL OR (customer_id IS NULL AND email_holder IS NOT NULL)

-- name: find_email_conflicts_in_batch
-- nor given to two customers of the same batch
UPDATE blipp_stage_customers s SET email_ok = false
FROM blipp_stage_customers first
WHERE s.email_seen AND s.email_ok AND first.email = s.email AND first.seq < s.seq
  AND coalesce(first.customer_id, first.new_id) <> coalesce(s.customer_id, s.new_id)

-- name: insert_new_customers
-- rows still unresolved are new customers, under the ids staged for them
INSERT INTO public.customers (id, business_id, source, external_id, name, email, phone, address,
                              tags, archived, deleted_at, review_requests_allowed, sms_allowed)
SELECT s.new_id, :business_id, :source, s.external_id, s.name,
       CASE WHEN s.email_ok THEN s.email END, s.phone, s.address,
       coalesce(s.tags, '[]'::jsonb), coalesce(s.archived, false),
       CASE WHEN s.deleted THEN now() END, coalesce(s.review_ok, true), s.sms_allowed
FROM blipp_stage_customers s
WHERE s.customer_id IS NULL
ORDER BY s.seq

-- name: update_changed_customers
-- only rows where a field the record carries differs: a re-import of unchanged data
-- writes nothing. Each staged row finds its customer by primary key. The tenant check is a
-- CASE so that it only filters: as a plain `c.business_id = :business_id` a planner that
-- believes the business small scans all its customers once and joins them with every
-- staged row (measured: 1e9 comparisons in one batch at 200k customers).
UPDATE public.customers c SET
    name = coalesce(s.name, c.name),
    email = CASE WHEN s.email_ok AND s.email IS NOT NULL THEN s.email ELSE c.email END,
    phone = coalesce(s.phone, c.phone),
    address = coalesce(s.address, c.address),
    tags = CASE WHEN s.tags IS NULL OR c.tags @> s.tags THEN c.tags
                ELSE c.tags || (SELECT coalesce(jsonb_agg(t), '[]'::jsonb)
                                FROM jsonb_array_elements(s.tags) t WHERE NOT c.tags @> jsonb_build_array(t))
           END,
    archived = coalesce(s.archived, c.archived),
    deleted_at = CASE WHEN s.deleted THEN coalesce(c.deleted_at, now()) ELSE c.deleted_at END,
    review_requests_allowed = coalesce(s.review_ok, c.review_requests_allowed),
    sms_allowed = coalesce(s.sms_allowed, c.sms_allowed)
FROM blipp_stage_customers s
WHERE c.id = s.customer_id AND CASE WHEN c.business_id = :business_id THEN true END
  AND (   (s.name IS NOT NULL AND s.name IS DISTINCT FROM c.name)
       OR (s.email_ok AND s.email IS NOT NULL AND s.email IS DISTINCT FROM c.email)
       OR (s.phone IS NOT NULL AND s.phone IS DISTINCT FROM c.phone)
       OR (s.address IS NOT NULL AND s.address IS DISTINCT FROM c.address)
       OR (s.tags IS NOT NULL AND NOT c.tags @> s.tags)
       OR (s.archived IS NOT NULL AND s.archived IS DISTINCT FROM c.archived)
       OR (s.deleted AND c.deleted_at IS NULL)
       OR (s.review_ok IS NOT NULL AND s.review_ok IS DISTINCT FROM c.review_requests_allowed)
       OR (s.sms_allowed IS NOT NULL AND s.sms_allowed IS DISTINCT FROM c.sms_allowed))

-- name: insert_aliases
-- a customer matched by email now also answers to this source's id
INSERT INTO public.customer_identities (business_id, source, external_id, customer_id)
SELECT :business_id, :source, s.external_id, s.customer_id
FROM blipp_stage_customers s
WHERE s.matched = 'email'
ON CONFLICT (business_id, source, external_id) DO NOTHING

-- name: record_email_conflicts
INSERT INTO public.identity_conflicts (business_id, source, external_id, customer_id,
                                       conflicting_customer_id, field, value, reason, sync_run_id)
SELECT :business_id, :source, s.external_id, coalesce(s.customer_id, s.new_id), s.conflict_with,
       'email', s.email,
       'the email already belongs to another customer of this business; kept on that customer',
       :run_id
FROM blipp_stage_customers s
WHERE NOT s.email_ok
ON CONFLICT (business_id, source, external_id, field, value) DO NOTHING

-- name: count_customers
SELECT count(*) FILTER (WHERE customer_id IS NULL) AS created,
       count(*) FILTER (WHERE customer_id IS NOT NULL) AS existing,
       count(*) FILTER (WHERE NOT email_ok) AS conflicts
FROM blipp_stage_customers

-- name: insert_events
-- Each event's customer is found by scalar subqueries on the full key, so every staged
-- event costs one index probe whatever the planner believes about the business. (As a
-- join, a business whose statistics still say "empty" -- any business mid-way through its
-- first big import -- was planned as one scan of all its customers, materialised and
-- filtered per event: 5,000 x 200,000 comparisons a batch, a quadratic import.)
WITH inserted AS (
    INSERT INTO public.trigger_events (business_id, connection_id, source, event_type, customer_id,
                                       external_customer_id, occurred_at, payload, dedupe_key,
                                       historical, routing_state)
    SELECT :business_id, :connection_id, :source, e.event_type,
           coalesce((SELECT coalesce(own.merged_into_id, own.id) FROM public.customers own
                     WHERE own.business_id = :business_id AND own.source = :source
                       AND own.external_id = e.external_customer_id),
                    (SELECT i.customer_id FROM public.customer_identities i
                     WHERE i.business_id = :business_id AND i.source = :source
                       AND i.external_id = e.external_customer_id)),
           e.external_customer_id, e.occurred_at, e.payload, e.dedupe_key, e.historical,
           CASE WHEN e.historical THEN 'historical' ELSE 'pending' END
    FROM blipp_stage_events e
    ON CONFLICT (business_id, dedupe_key) DO NOTHING
    RETURNING historical
)
SELECT count(*) FILTER (WHERE NOT historical) AS emitted,
       count(*) FILTER (WHERE historical) AS historical
FROM inserted

-- name: store_cursor
UPDATE public.connections SET cursor = CAST(:cursor AS jsonb), cursor_updated_at = now()
WHERE id = :connection_id

-- name: add_run_counts
UPDATE public.sync_runs SET
    customers_created = customers_created + :created,
    customers_updated = customers_updated + :updated,
    customers_unchanged = customers_unchanged + :unchanged,
    customers_rejected = customers_rejected + :rejected,
    events_emitted = events_emitted + :emitted,
    events_historical = events_historical + :historical,
    events_duplicate = events_duplicate + :duplicate
WHERE id = :run_id
