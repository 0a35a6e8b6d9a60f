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

-- Events whose routing is finished, oldest business date first. Routing already changes
-- routing_state (a column of the pending index), so this adds no lost HOT update.
CREATE INDEX IF NOT EXISTS trigger_events_finished_occurred_idx
    ON public.trigger_events (occurred_at) WHERE routing_state IN ('routed', 'historical');

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
