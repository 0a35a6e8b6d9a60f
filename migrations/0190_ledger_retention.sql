-- What the daily retention of sync_runs and trigger_events (issue 15) reads, each step
-- served by an index so a day's sweep touches the rows it deletes and little else.
-- Idempotent; nothing destructive. (Plain CREATE INDEX: the runner applies a migration in
-- one transaction, which CONCURRENTLY cannot run in; on a big existing trigger_events the
-- build blocks its writes for a while: apply it in a quiet hour.)

-- "Is this run still the subject of an identity conflict?" (a referenced run is never
-- deleted), and the lookup the ON DELETE SET NULL key does for every deleted run: without
-- it each deleted run scanned the whole of identity_conflicts.
CREATE INDEX IF NOT EXISTS identity_conflicts_sync_run_idx
    ON public.identity_conflicts (sync_run_id) WHERE sync_run_id IS NOT NULL;

-- Events by when they were stored, as a BRIN index: a few pages summarise each range of
-- the table, which only ever grows at its end, so an import's every event costs it
-- nothing (a btree here was one more index insertion per event of every bulk load). The
-- daily sweep deletes one window of creation time at a time (journeys/retention.py).
CREATE INDEX IF NOT EXISTS trigger_events_created_brin
    ON public.trigger_events USING brin (created_at);

-- How far the sweep of no-op sync runs has gone: runs started before swept_until were
-- looked at once already, so the next day's sweep starts there instead of walking a
-- year of kept runs again (sync_runs_started_idx serves the walk; a partial index on
-- "no-op" would cost every sync pass its HOT update, since the pass sets the columns
-- such a predicate reads).
CREATE TABLE IF NOT EXISTS blippsync.retention_sweeps (
    name         text PRIMARY KEY,
    swept_until  timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON blippsync.retention_sweeps FROM PUBLIC;
