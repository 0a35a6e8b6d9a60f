"""The journey engine: sequences as files, routing events into enrollments with recorded
decisions, executing due steps exactly once through channel plugins, and retention.

The daemon and `run-once` call three functions:

    route_events(db, config, *, batch_size=None, now=None, max_batches=None) -> RoutingSummary
    execute_due_steps(db, config, plugins, *, batch_size=None, now=None, max_batches=None)
        -> ExecutionSummary
    run_maintenance(db, config, *, now=None) -> MaintenanceSummary
"""

from __future__ import annotations

from blippsync.journeys.execution import ExecutionSummary, execute_due_steps
from blippsync.journeys.routing import RoutingSummary, route_events

__all__ = ["ExecutionSummary", "RoutingSummary", "execute_due_steps", "route_events"]
