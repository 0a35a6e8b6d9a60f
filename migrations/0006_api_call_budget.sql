-- Recent API calls per remote account, so per-account limits (QuickBooks: 500 requests a
-- minute per company) hold across every daemon and host sharing this database. Rows older
-- than the window are deleted as calls are made. Internal to the daemon: schema blippsync.
CREATE SCHEMA IF NOT EXISTS blippsync;
CREATE TABLE IF NOT EXISTS blippsync.api_calls (
    key  text NOT NULL,          -- "<connector>:<account>"
    at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS api_calls_key_at_idx ON blippsync.api_calls (key, at);

-- Spend one call of `key`'s window, or say how many seconds until one is free (0: spent).
-- One round trip per API request; the transaction lock serialises accounting per key.
CREATE OR REPLACE FUNCTION blippsync.spend_api_call(call_key text, per_window integer,
                                                    window_seconds double precision)
RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE
    calls integer;
    oldest timestamptz;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(call_key), -1);
    DELETE FROM blippsync.api_calls
    WHERE key = call_key AND at < clock_timestamp() - make_interval(secs => window_seconds);
    SELECT count(*), min(at) INTO calls, oldest FROM blippsync.api_calls WHERE key = call_key;
    IF calls < per_window THEN
        INSERT INTO blippsync.api_calls (key, at) VALUES (call_key, clock_timestamp());
        RETURN 0;
    END IF;
    RETURN greatest(window_seconds - extract(epoch FROM clock_timestamp() - oldest), 0.01);
END
$$;
