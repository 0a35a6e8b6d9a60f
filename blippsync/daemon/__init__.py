"""The long-running service (`blippsync run`): scheduling, leases, webhooks, shutdown.

See `service.Daemon` for the threads and `leases` for how replicas share the work.
"""

from __future__ import annotations

from blippsync.daemon.service import Daemon

__all__ = ["Daemon"]
