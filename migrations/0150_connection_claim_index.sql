-- The daemons' claim walks the connections due for a scheduled sync in next_sync_at order.
-- csv and manual connections are never scheduled (files and commands drive them) yet stay
-- "due" forever at the head of connections_due_idx: one per business that ever imported a
-- file, all walked past by every claim of every daemon. This index leaves them out, so a
-- claim reads only the rows it may take (the predicate is repeated in daemon/leases.py).
CREATE INDEX IF NOT EXISTS connections_scheduled_due_idx ON public.connections (next_sync_at)
    WHERE status = 'connected' AND connector NOT IN ('csv', 'manual');
