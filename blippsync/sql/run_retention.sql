-- Retention of sync_runs (issue 15): one pass's bookkeeping row, kept 7 days when the pass
-- changed nothing, a year otherwise (sync.noop_run_retention_days, sync.run_retention_days).

-- name: sweep_runs
-- One chunk of the walk over runs started before the cutoff, in (started_at, id) order
-- from just after the previous chunk's last run (keyset: each run is looked at once per
-- sweep, however many it keeps, through sync_runs_started_idx). Deletes what may go and
-- reports how far the chunk reached. Never deleted: a run in progress, a connection's
-- latest run (a newer run of it must exist), a run an identity conflict points at (the
-- conflict's provenance). With noop_only, only a succeeded pass that changed
-- nothing: not --full, no error, no customer created/updated/rejected, no event emitted or
-- stored as historical, and details with no problem, conflict, merge or join (and no key
-- this query does not know: a new kind of detail keeps its run until someone decides).
WITH batch AS (
    SELECT r.id, r.started_at FROM public.sync_runs r
    WHERE r.started_at >= CAST(:after_at AS timestamptz)
      AND (r.started_at, r.id) > (CAST(:after_at AS timestamptz), CAST(:after_id AS uuid))
      AND r.started_at < CAST(:before AS timestamptz)
    ORDER BY r.started_at, r.id
    LIMIT :limit
), doomed AS (
    SELECT r.id FROM public.sync_runs r JOIN batch b ON b.id = r.id
    WHERE r.status <> 'running'
      AND (NOT CAST(:noop_only AS boolean) OR (
            r.status = 'succeeded' AND NOT r.full_sync AND r.error IS NULL
            AND r.customers_created = 0 AND r.customers_updated = 0
            AND r.customers_rejected = 0
            AND r.events_emitted = 0 AND r.events_historical = 0
            AND r.details - 'problems' - 'conflicts' - 'merged' - 'joined'
                = CAST('{}' AS jsonb)
            AND coalesce(r.details -> 'problems', CAST('[]' AS jsonb)) = CAST('[]' AS jsonb)
            AND coalesce(r.details -> 'conflicts', CAST('0' AS jsonb)) = CAST('0' AS jsonb)
            AND coalesce(r.details -> 'merged', CAST('0' AS jsonb)) = CAST('0' AS jsonb)
            AND coalesce(r.details -> 'joined', CAST('0' AS jsonb)) = CAST('0' AS jsonb)))
      AND NOT EXISTS (SELECT 1 FROM public.identity_conflicts c WHERE c.sync_run_id = r.id)
      AND (r.connection_id IS NULL OR r.started_at < (
            SELECT max(n.started_at) FROM public.sync_runs n
            WHERE n.connection_id = r.connection_id))
    FOR UPDATE OF r SKIP LOCKED
), gone AS (
    DELETE FROM public.sync_runs r USING doomed d WHERE r.id = d.id RETURNING r.id
), last AS (
    SELECT started_at, id FROM batch ORDER BY started_at DESC, id DESC LIMIT 1
)
SELECT (SELECT count(*) FROM batch) AS scanned, (SELECT count(*) FROM gone) AS deleted,
       (SELECT started_at FROM last) AS last_at, (SELECT id FROM last) AS last_id
