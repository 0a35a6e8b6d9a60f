-- Column privileges where a row-level policy alone would let a user escalate.
--
-- Row-level security decides WHICH rows a user reaches, not which columns they may set:
-- a member of a business could otherwise make themselves its owner (created_by), and any
-- user could mark their business paid (subscription_status, stripe_customer_id). Those
-- columns belong to the service role (billing webhooks, ownership transfers). Likewise a
-- user creating their own profile may not pick its role (0004 already limits UPDATE of
-- profiles to the email column). GRANT and REVOKE are idempotent: re-running is a no-op.

REVOKE INSERT, UPDATE ON public.businesses FROM anon, authenticated;
GRANT INSERT (name, created_by, google_review_url, google_place_id, website_url, phone,
              timezone, country)
    ON public.businesses TO authenticated;
GRANT UPDATE (name, google_review_url, google_place_id, website_url, phone, timezone, country)
    ON public.businesses TO authenticated;

REVOKE INSERT ON public.profiles FROM anon, authenticated;
GRANT INSERT (id, email, business_id) ON public.profiles TO authenticated;
