-- Bookkeeping around one sync pass of a connection.

-- name: try_lock_connection
-- one pass per connection at a time, across processes and machines
SELECT pg_try_advisory_lock(hashtextextended('blippsync:connection:' || CAST(:id AS text), 0))

-- name: lock_holder
-- who holds the connection's lock: the PostgreSQL backend and what it is doing
SELECT a.pid, a.application_name, a.client_addr, a.backend_start, a.state, a.state_change
FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.classid = CAST((hashtextextended('blippsync:connection:' || CAST(:id AS text), 0) >> 32)
                       & 4294967295 AS oid)
  AND l.objid = CAST(hashtextextended('blippsync:connection:' || CAST(:id AS text), 0)
                     & 4294967295 AS oid)
LIMIT 1

-- name: connection_exists
SELECT EXISTS (SELECT 1 FROM public.connections WHERE id = :id)

-- name: unlock_connection
SELECT pg_advisory_unlock(hashtextextended('blippsync:connection:' || CAST(:id AS text), 0))

-- name: close_abandoned_runs
UPDATE public.sync_runs SET status = 'interrupted', finished_at = now(),
       error = coalesce(error, 'the process running it stopped before finishing')
WHERE connection_id = :connection_id AND status = 'running'

-- name: start_run
INSERT INTO public.sync_runs (business_id, connection_id, connector, full_sync)
VALUES (:business_id, :connection_id, :connector, :full)
RETURNING id

-- name: finish_run
UPDATE public.sync_runs SET status = :status, error = :error, finished_at = now(),
       duration_ms = :duration_ms, details = CAST(:details AS jsonb)
WHERE id = :run_id

-- name: finish_connection_ok
UPDATE public.connections SET last_sync_at = now(), last_success_at = now(), last_error = NULL,
       consecutive_failures = 0
WHERE id = :id

-- name: finish_connection_failed
UPDATE public.connections SET last_sync_at = now(), last_error = :error, last_error_at = now(),
       consecutive_failures = consecutive_failures + 1
WHERE id = :id

-- name: finish_connection_interrupted
-- stopped at a checkpoint (shutdown): what it did is committed, but it was no full pass
UPDATE public.connections SET last_sync_at = now() WHERE id = :id
