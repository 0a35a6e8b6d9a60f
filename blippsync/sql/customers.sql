-- Customer-level operations beyond the batch upsert.

-- name: customer_by_identity
-- the customer a source id names: its own first id, else an alias
SELECT coalesce(merged_into_id, id) FROM public.customers
WHERE business_id = :business_id AND source = :source AND external_id = :external_id
UNION ALL
SELECT customer_id FROM public.customer_identities
WHERE business_id = :business_id AND source = :source AND external_id = :external_id
LIMIT 1

-- name: alias_merged_key
-- the merged-away customer's own source id and its aliases all answer to the survivor
INSERT INTO public.customer_identities (business_id, source, external_id, customer_id)
SELECT business_id, source, external_id, :survivor_id FROM public.customers
WHERE id = :merged_id AND business_id = :business_id AND external_id IS NOT NULL
ON CONFLICT (business_id, source, external_id) DO UPDATE SET customer_id = EXCLUDED.customer_id

-- name: move_aliases
UPDATE public.customer_identities SET customer_id = :survivor_id
WHERE business_id = :business_id AND customer_id = :merged_id

-- name: retire_merged
-- the merged-away row keeps its history pointer; its email moves to the survivor when the
-- survivor has none (the email is unique per business); opt-outs are never lost
WITH merged AS (
    UPDATE public.customers SET merged_into_id = :survivor_id,
           deleted_at = coalesce(deleted_at, now()), email = NULL
    WHERE id = :merged_id AND business_id = :business_id
    RETURNING (SELECT email FROM public.customers WHERE id = :merged_id) AS old_email,
              opted_out, opted_out_at, phone
)
UPDATE public.customers s SET
    opted_out = s.opted_out OR m.opted_out,
    opted_out_at = CASE WHEN s.opted_out THEN s.opted_out_at
                        WHEN m.opted_out THEN coalesce(m.opted_out_at, now()) END,
    email = coalesce(s.email, m.old_email),
    phone = coalesce(s.phone, m.phone)
FROM merged m
WHERE s.id = :survivor_id AND s.business_id = :business_id
