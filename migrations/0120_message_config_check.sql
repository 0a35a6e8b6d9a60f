-- sequence_steps.message_config is written by the web app directly, past the daemon's
-- validation. The database keeps its shape honest for every writer: an object whose
-- templates (subject, body, text) are strings, 100,000 bytes at most in all. Whether a
-- template parses and renders within its budget is checked by the daemon when it claims
-- the step (a bad one fails that step only, with the reason `explain` shows).
-- NOT VALID: enforced on every write from now on, without failing on rows already there.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_constraint
                   WHERE conname = 'sequence_steps_message_config_shape'
                     AND conrelid = 'public.sequence_steps'::regclass) THEN
        ALTER TABLE public.sequence_steps
            ADD CONSTRAINT sequence_steps_message_config_shape CHECK (
                jsonb_typeof(message_config) = 'object'
                AND coalesce(jsonb_typeof(message_config -> 'subject'), 'string') = 'string'
                AND coalesce(jsonb_typeof(message_config -> 'body'), 'string') = 'string'
                AND coalesce(jsonb_typeof(message_config -> 'text'), 'string') = 'string'
                AND octet_length(message_config::text) <= 100000
            ) NOT VALID;
    END IF;
END
$$;
