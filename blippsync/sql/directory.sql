-- Looking customers up (blippsync customers list|show|search) and reviewing identity
-- decisions (blippsync conflicts list|resolve). Read-mostly; every query is business-scoped
-- or keyed by a primary key.

-- name: list_customers
SELECT c.id, c.business_id, c.name, c.email, c.phone, c.mobile_phone, c.source, c.external_id,
       c.created_at
FROM public.customers c
WHERE (CAST(:business_id AS uuid) IS NULL OR c.business_id = :business_id)
  AND c.merged_into_id IS NULL AND c.deleted_at IS NULL
ORDER BY c.created_at, c.id
LIMIT :limit

-- name: search_customers
-- by name or email (substring, any case), by phone (its digits, in any of the numbers), or
-- by a source id (the customer's own or one it answers to: alias, site, shared email)
SELECT c.id, c.business_id, c.name, c.email, c.phone, c.mobile_phone, c.source, c.external_id,
       c.created_at
FROM public.customers c
WHERE (CAST(:business_id AS uuid) IS NULL OR c.business_id = :business_id)
  AND c.merged_into_id IS NULL
  AND (   c.name ILIKE :pattern OR c.email ILIKE :pattern OR c.other_emails::text ILIKE :pattern
       OR c.external_id = :term
       OR (:digits <> '' AND (regexp_replace(coalesce(c.phone, ''), '\D', '', 'g') LIKE :digit_pattern
                              OR regexp_replace(c.phones::text, '\D', '', 'g') LIKE :digit_pattern))
       OR EXISTS (SELECT 1 FROM public.customer_identities i
                  WHERE i.customer_id = c.id AND (i.external_id = :term OR i.label ILIKE :pattern)))
ORDER BY c.name NULLS LAST, c.id
LIMIT :limit

-- name: customer_detail
SELECT c.id, c.business_id, b.name AS business, c.name, c.email, c.other_emails, c.phone,
       c.mobile_phone, c.phones, c.address, c.tags, c.source, c.external_id, c.opted_out,
       c.archived, c.deleted_at, c.review_requests_allowed, c.sms_allowed, c.merged_into_id,
       c.created_at, c.updated_at
FROM public.customers c JOIN public.businesses b ON b.id = c.business_id
WHERE c.id = :id

-- name: customer_identities
SELECT source, external_id, relation, label, first_seen_at, last_seen_at
FROM public.customer_identities WHERE customer_id = :id
ORDER BY relation, source, external_id

-- name: list_conflicts
SELECT k.id, k.business_id, k.kind, k.source, k.external_id, k.customer_id,
       k.conflicting_customer_id, k.field, k.value, k.reason, k.details, k.created_at,
       k.resolved_at, k.resolution, c.name AS customer_name, o.name AS other_name
FROM public.identity_conflicts k
LEFT JOIN public.customers c ON c.id = k.customer_id
LEFT JOIN public.customers o ON o.id = k.conflicting_customer_id
WHERE (CAST(:business_id AS uuid) IS NULL OR k.business_id = :business_id)
  AND (CAST(:customer_id AS uuid) IS NULL OR :customer_id IN (k.customer_id,
                                                              k.conflicting_customer_id))
  AND (:include_resolved OR k.resolved_at IS NULL)
ORDER BY k.created_at, k.id

-- name: lock_conflict
SELECT id, business_id, kind, source, external_id, customer_id, conflicting_customer_id,
       value, details, resolved_at
FROM public.identity_conflicts WHERE id = :id FOR UPDATE

-- name: mark_resolved
UPDATE public.identity_conflicts
SET resolved_at = now(), resolution = :resolution, customer_id = :customer_id
WHERE id = :id

-- name: split_shared_record
-- keep apart: the record that joined by a shared email becomes a customer of its own
-- (without that email, which stays with the customer who has it)
WITH gone AS (
    DELETE FROM public.customer_identities
    WHERE business_id = :business_id AND source = :source AND external_id = :external_id
    RETURNING label
)
INSERT INTO public.customers (business_id, source, external_id, name, phone, mobile_phone,
                              address, phones)
SELECT :business_id, :source, :external_id,
       coalesce(CAST(:name AS text), (SELECT label FROM gone)), :phone, :mobile, :address,
       CAST(:phones AS jsonb)
RETURNING id

-- name: move_record_events
-- the events that record brought now belong to its own customer
UPDATE public.trigger_events SET customer_id = :customer_id
WHERE business_id = :business_id AND source = :source AND external_customer_id = :external_id
