-- 0101 lets signed-in users write every column of customers except id, granted column by
-- column as the table then was; the contact columns 0130 added (mobile_phone, phones,
-- other_emails) get the same grants, so the web app can write a customer whole.
-- GRANT is idempotent.
GRANT INSERT (mobile_phone, phones, other_emails), UPDATE (mobile_phone, phones, other_emails)
    ON public.customers TO authenticated;
