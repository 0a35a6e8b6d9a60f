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
    mobile         text,
    phones         jsonb,           -- every number: [{"number", "kind"}]
    other_emails   jsonb,           -- every further address
    address        text,
    tags           jsonb,
    archived       boolean,
    deleted        boolean NOT NULL DEFAULT false,
    review_ok      boolean,
    sms_allowed    boolean,
    customer_id    uuid,
    matched        text,            -- key | alias | email | shared_email | site; NULL: new
    current_email  text,
    email_ok       boolean NOT NULL DEFAULT true,
    conflict_with  uuid,
    email_holder   uuid,            -- the customer that already has this email, if any
    email_seen     boolean NOT NULL DEFAULT false, -- an earlier row of the batch had it too
    parent_external_id text,        -- a sub-customer / site of this source id
    label          text,            -- a site's own name
    parent_customer uuid,           -- the customer a site belongs to
    released       boolean NOT NULL DEFAULT false, -- no longer a site / sharer: resolved anew
    own_id         uuid             -- a site that was once stored as a customer of its own
) WITH (fillfactor = 50) ON COMMIT DELETE ROWS  -- room for HOT updates of the resolution columns

-- name: create_event_stage
CREATE TEMP TABLE IF NOT EXISTS blipp_stage_events (
    id                    uuid NOT NULL,  -- time-ordered (ids.py): appended to the keys
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

-- name: no_jit
-- the staged table is never analysed, so the planner guesses thousands of rows for
-- filters that match none (sites, shared emails) and its cost estimate crosses
-- jit_above_cost: measured 0.4 s of JIT compilation per statement per batch, for
-- statements that run in milliseconds
SET LOCAL jit = off

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
    SELECT c.id, c.email, i.relation  -- alias | site | shared_email
    FROM public.customer_identities i JOIN public.customers c ON c.id = i.customer_id
    WHERE i.business_id = :business_id AND i.source = :source AND i.external_id = s.external_id)
WHERE s.customer_id IS NULL
  AND (SELECT true FROM public.customer_identities i
       WHERE i.business_id = :business_id AND i.source = :source AND i.external_id = s.external_id)

-- name: release_former_sharers
-- a record that joined a customer by a shared email and now has an address of its own,
-- or a former site that has no parent any more, is resolved again like a new record
UPDATE blipp_stage_customers
SET customer_id = NULL, matched = NULL, current_email = NULL, released = true
WHERE (matched = 'shared_email' AND email IS NOT NULL
       AND email IS DISTINCT FROM lower(current_email))
   OR (matched = 'site' AND parent_external_id IS NULL)

-- name: forget_released_identities
-- the released records that became customers of their own no longer answer to another
-- customer; their recorded join is closed
WITH gone AS (
    DELETE FROM public.customer_identities i
    USING blipp_stage_customers s
    WHERE s.released AND s.customer_id IS NULL AND i.business_id = :business_id
      AND i.source = :source AND i.external_id = s.external_id
    RETURNING i.external_id
)
UPDATE public.identity_conflicts k SET resolved_at = now(), resolution = 'kept_apart'
FROM gone
WHERE k.business_id = :business_id AND k.source = :source AND k.external_id = gone.external_id
  AND k.kind = 'merged' AND k.resolved_at IS NULL

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
-- 3. the same email on another customer: the same person arriving from another system
--    (email: this id becomes an alias), or a second record of this source sharing the
--    person's address, an office managing two properties (shared_email: both records
--    reach that one contactable customer; see docs/architecture.md). A customer deleted
--    at this source whose email comes back under a new id was re-created there: the new
--    id is that person (email), and brings the customer back
UPDATE blipp_stage_customers s SET customer_id = c.id, current_email = c.email,
    matched = CASE WHEN c.deleted_at IS NULL
                        AND ((c.source = :source AND c.external_id IS NOT NULL)
                             OR EXISTS (SELECT 1 FROM public.customer_identities i
                                        WHERE i.customer_id = c.id AND i.source = :source))
                   THEN 'shared_email' ELSE 'email' END
FROM public.customers c
WHERE s.customer_id IS NULL AND s.email_holder IS NOT NULL AND c.id = s.email_holder

-- name: later_email_matches_share
-- two ids of this source matched one customer by email: the first is that person's id
-- there, the others share its address
UPDATE blipp_stage_customers s SET matched = 'shared_email'
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

-- name: join_shared_in_batch
-- a new record whose email an earlier record of this batch brings shares that customer
UPDATE blipp_stage_customers s
SET customer_id = coalesce(first.customer_id, first.new_id), matched = 'shared_email'
FROM blipp_stage_customers first
WHERE s.email_seen AND s.customer_id IS NULL AND s.email_ok AND first.email = s.email
  AND first.seq = (SELECT min(f.seq) FROM blipp_stage_customers f WHERE f.email = s.email)
  AND first.seq < s.seq AND first.email_ok

-- name: find_email_conflicts_in_batch
-- nor given to two customers of the same batch
UPDATE blipp_stage_customers s SET email_ok = false
FROM blipp_stage_customers first
WHERE s.email_seen AND s.email_ok AND first.email = s.email AND first.seq < s.seq
  AND coalesce(first.customer_id, first.new_id) <> coalesce(s.customer_id, s.new_id)

-- name: resolve_sites
-- 4. a sub-customer / job site belongs to its parent's customer (the parent is a record of
--    this batch, or resolved by its own key or alias); only site rows are looked at
UPDATE blipp_stage_customers s
SET parent_customer = coalesce(
        (SELECT coalesce(par.customer_id, par.new_id) FROM blipp_stage_customers par
         WHERE par.external_id = s.parent_external_id AND par.parent_external_id IS NULL),
        (SELECT coalesce(c.merged_into_id, c.id) FROM public.customers c
         WHERE c.business_id = :business_id AND c.source = :source
           AND c.external_id = s.parent_external_id),
        (SELECT i.customer_id FROM public.customer_identities i
         WHERE i.business_id = :business_id AND i.source = :source
           AND i.external_id = s.parent_external_id))
WHERE s.parent_external_id IS NOT NULL

-- name: file_sites
-- one once stored as a customer of its own is remembered in own_id, to be merged into
-- the parent
UPDATE blipp_stage_customers
SET own_id = CASE WHEN matched = 'key' AND customer_id <> parent_customer THEN customer_id END,
    customer_id = parent_customer, matched = 'site'
WHERE parent_customer IS NOT NULL

-- name: unresolved_sites
-- sites whose parent is not known: reported, never stored as customers to contact
DELETE FROM blipp_stage_customers
WHERE parent_external_id IS NOT NULL AND customer_id IS NULL
RETURNING external_id, parent_external_id, label

-- name: legacy_sites
SELECT customer_id, own_id FROM blipp_stage_customers WHERE own_id IS NOT NULL

-- name: insert_new_customers
-- rows still unresolved are new customers, under the ids staged for them
INSERT INTO public.customers (id, business_id, source, external_id, name, email, phone,
                              mobile_phone, phones, other_emails, address, tags, archived,
                              deleted_at, review_requests_allowed, sms_allowed)
SELECT s.new_id, :business_id, :source, s.external_id, s.name,
       CASE WHEN s.email_ok THEN s.email END, s.phone, s.mobile,
       coalesce(s.phones, '[]'::jsonb), coalesce(s.other_emails, '[]'::jsonb), s.address,
       coalesce(s.tags, '[]'::jsonb), coalesce(s.archived, false),
       CASE WHEN s.deleted THEN now() END, coalesce(s.review_ok, true), s.sms_allowed
FROM blipp_stage_customers s
WHERE s.customer_id IS NULL
ORDER BY s.seq

-- name: update_changed_customers
-- only rows where a field the record carries differs: a re-import of unchanged data
-- writes nothing. Sites and records sharing another's email never overwrite the
-- customer they reach (fill_from_shared_records adds what they know). Each staged row finds
-- its customer by primary key. The tenant check is a CASE so that it only filters: as a
-- plain `c.business_id = :business_id` a planner that believes the business small scans all
-- its customers once and joins them with every staged row (measured: 1e9 comparisons in one
-- batch at 200k customers).
UPDATE public.customers c SET
    name = coalesce(s.name, c.name),
    email = CASE WHEN s.email_ok AND s.email IS NOT NULL THEN s.email ELSE c.email END,
    phone = coalesce(s.phone, c.phone),
    mobile_phone = coalesce(s.mobile, c.mobile_phone),
    phones = CASE WHEN s.phones IS NULL OR c.phones @> s.phones THEN c.phones
                  ELSE c.phones || (SELECT coalesce(jsonb_agg(p), '[]'::jsonb)
                                    FROM jsonb_array_elements(s.phones) p
                                    WHERE NOT c.phones @> jsonb_build_array(p)) END,
    other_emails = CASE WHEN s.other_emails IS NULL OR c.other_emails @> s.other_emails
                        THEN c.other_emails
                        ELSE c.other_emails || (SELECT coalesce(jsonb_agg(e), '[]'::jsonb)
                                                FROM jsonb_array_elements(s.other_emails) e
                                                WHERE NOT c.other_emails @> jsonb_build_array(e))
                   END,
    address = coalesce(s.address, c.address),
    tags = CASE WHEN s.tags IS NULL OR c.tags @> s.tags THEN c.tags
                ELSE c.tags || (SELECT coalesce(jsonb_agg(t), '[]'::jsonb)
                                FROM jsonb_array_elements(s.tags) t WHERE NOT c.tags @> jsonb_build_array(t))
           END,
    archived = coalesce(s.archived, c.archived),
    deleted_at = CASE WHEN s.deleted THEN coalesce(c.deleted_at, now())
                      WHEN s.matched = 'email' AND c.source = :source THEN NULL  -- re-created
                      ELSE c.deleted_at END,
    review_requests_allowed = coalesce(s.review_ok, c.review_requests_allowed),
    sms_allowed = coalesce(s.sms_allowed, c.sms_allowed)
FROM blipp_stage_customers s
WHERE c.id = s.customer_id AND CASE WHEN c.business_id = :business_id THEN true END
  AND s.matched NOT IN ('site', 'shared_email')
  AND (   (s.name IS NOT NULL AND s.name IS DISTINCT FROM c.name)
       OR (s.email_ok AND s.email IS NOT NULL AND s.email IS DISTINCT FROM c.email)
       OR (s.phone IS NOT NULL AND s.phone IS DISTINCT FROM c.phone)
       OR (s.mobile IS NOT NULL AND s.mobile IS DISTINCT FROM c.mobile_phone)
       OR (s.phones IS NOT NULL AND NOT c.phones @> s.phones)
       OR (s.other_emails IS NOT NULL AND NOT c.other_emails @> s.other_emails)
       OR (s.address IS NOT NULL AND s.address IS DISTINCT FROM c.address)
       OR (s.tags IS NOT NULL AND NOT c.tags @> s.tags)
       OR (s.archived IS NOT NULL AND s.archived IS DISTINCT FROM c.archived)
       OR (s.deleted AND c.deleted_at IS NULL)
       OR (NOT s.deleted AND s.matched = 'email' AND c.source = :source
           AND c.deleted_at IS NOT NULL)
       OR (s.review_ok IS NOT NULL AND s.review_ok IS DISTINCT FROM c.review_requests_allowed)
       OR (s.sms_allowed IS NOT NULL AND s.sms_allowed IS DISTINCT FROM c.sms_allowed))

-- name: fill_from_shared_records
-- what records sharing a customer's email know and the customer lacks: a missing name,
-- phone or address, and every further number and address (never a replacement)
UPDATE public.customers c SET
    name = coalesce(c.name, x.name), phone = coalesce(c.phone, x.phone),
    mobile_phone = coalesce(c.mobile_phone, x.mobile), address = coalesce(c.address, x.address),
    phones = c.phones || (SELECT coalesce(jsonb_agg(DISTINCT p), '[]'::jsonb)
                          FROM jsonb_array_elements(x.phones) p
                          WHERE NOT c.phones @> jsonb_build_array(p)),
    other_emails = c.other_emails || (SELECT coalesce(jsonb_agg(DISTINCT e), '[]'::jsonb)
                                      FROM jsonb_array_elements(x.other_emails) e
                                      WHERE NOT c.other_emails @> jsonb_build_array(e))
FROM (SELECT customer_id,
             (array_agg(name ORDER BY seq) FILTER (WHERE name IS NOT NULL))[1] AS name,
             (array_agg(phone ORDER BY seq) FILTER (WHERE phone IS NOT NULL))[1] AS phone,
             (array_agg(mobile ORDER BY seq) FILTER (WHERE mobile IS NOT NULL))[1] AS mobile,
             (array_agg(address ORDER BY seq) FILTER (WHERE address IS NOT NULL))[1] AS address,
             coalesce(jsonb_agg(p) FILTER (WHERE p IS NOT NULL), '[]'::jsonb) AS phones,
             coalesce(jsonb_agg(e) FILTER (WHERE e IS NOT NULL), '[]'::jsonb) AS other_emails
      FROM blipp_stage_customers
      LEFT JOIN LATERAL jsonb_array_elements(phones) p ON true
      LEFT JOIN LATERAL jsonb_array_elements(other_emails) e ON true
      WHERE matched = 'shared_email'
      GROUP BY customer_id) x
WHERE c.id = x.customer_id AND CASE WHEN c.business_id = :business_id THEN true END
  AND (   (c.name IS NULL AND x.name IS NOT NULL) OR (c.phone IS NULL AND x.phone IS NOT NULL)
       OR (c.mobile_phone IS NULL AND x.mobile IS NOT NULL)
       OR (c.address IS NULL AND x.address IS NOT NULL)
       OR NOT c.phones @> x.phones OR NOT c.other_emails @> x.other_emails)

-- name: insert_aliases
-- a customer matched by email now also answers to this source's id; a site or a record
-- sharing its email is recorded as such, with its own name
INSERT INTO public.customer_identities (business_id, source, external_id, customer_id,
                                        relation, label)
SELECT :business_id, :source, s.external_id, s.customer_id,
       CASE WHEN s.matched = 'email' THEN 'alias' ELSE s.matched END, coalesce(s.label, s.name)
FROM blipp_stage_customers s
WHERE s.matched IN ('email', 'shared_email', 'site')
ON CONFLICT (business_id, source, external_id) DO UPDATE
    SET customer_id = EXCLUDED.customer_id, relation = EXCLUDED.relation,
        label = coalesce(EXCLUDED.label, customer_identities.label), last_seen_at = now()
    WHERE EXCLUDED.relation <> 'alias'
      AND (customer_identities.customer_id, customer_identities.relation,
           customer_identities.label)
          IS DISTINCT FROM (EXCLUDED.customer_id, EXCLUDED.relation,
                            coalesce(EXCLUDED.label, customer_identities.label))

-- name: record_shared_email_merges
-- a record newly joined to the customer whose email it shares: shown to the operator,
-- who may keep it apart (blippsync conflicts resolve)
INSERT INTO public.identity_conflicts (business_id, source, external_id, customer_id,
                                       conflicting_customer_id, field, value, reason,
                                       sync_run_id, kind, details)
SELECT :business_id, :source, s.external_id, s.customer_id, s.customer_id, 'email', s.email,
       'shares its email with another customer of this business; both now reach that customer',
       :run_id, 'merged',
       jsonb_strip_nulls(jsonb_build_object('name', s.name, 'phone', s.phone,
                                            'mobile', s.mobile, 'address', s.address))
FROM blipp_stage_customers s
WHERE s.matched = 'shared_email' AND s.email IS NOT NULL
ON CONFLICT (business_id, source, external_id, field, value) DO NOTHING
RETURNING external_id, customer_id, value

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
RETURNING external_id, customer_id, conflicting_customer_id, value

-- name: count_customers
SELECT count(*) FILTER (WHERE customer_id IS NULL) AS created,
       count(*) FILTER (WHERE customer_id IS NOT NULL) AS existing
FROM blipp_stage_customers

-- name: insert_events
-- Each event's customer is found by scalar subqueries on the full key, so every staged
-- event costs one index probe whatever the planner believes about the business. (As a
-- join, a business whose statistics still say "empty" -- any business mid-way through its
-- first big import -- was planned as one scan of all its customers, materialised and
-- filtered per event: 5,000 x 200,000 comparisons a batch, a quadratic import.)
WITH inserted AS (
    INSERT INTO public.trigger_events (id, business_id, connection_id, source, event_type, customer_id,
                                       external_customer_id, occurred_at, payload, dedupe_key,
                                       historical, routing_state)
    SELECT e.id, :business_id, :connection_id, :source, e.event_type,
           coalesce(own.resolved, i.customer_id),
           e.external_customer_id, e.occurred_at,
           CASE WHEN i.relation IN ('site', 'shared_email')  -- which site or account it was for
                THEN e.payload || jsonb_build_object(
                         CASE i.relation WHEN 'site' THEN 'site' ELSE 'account' END,
                         jsonb_build_object('external_id', i.external_id, 'name', i.label))
                ELSE e.payload END,
           e.dedupe_key, e.historical,
           CASE WHEN e.historical THEN 'historical' ELSE 'pending' END
    FROM blipp_stage_events e
    -- per-row index lookups (LATERAL ... LIMIT 1): a join here let the planner hash every
    -- customer of the business on each batch, a cost that grew with what was stored
    LEFT JOIN LATERAL (
        SELECT coalesce(c.merged_into_id, c.id) AS resolved, c.merged_into_id
        FROM public.customers c
        WHERE c.business_id = :business_id AND c.source = :source
          AND c.external_id = e.external_customer_id
        LIMIT 1) own ON true
    LEFT JOIN LATERAL (
        SELECT ci.customer_id, ci.relation, ci.external_id, ci.label
        FROM public.customer_identities ci
        WHERE (own.resolved IS NULL OR own.merged_into_id IS NOT NULL)
          AND ci.business_id = :business_id AND ci.source = :source
          AND ci.external_id = e.external_customer_id
        LIMIT 1) i ON true
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
