"""The journey engine: sequences as files, routing events into enrollments with recorded
decisions, executing due steps exactly once through channel plugins, and retention.

The orchestrator (`blippsync.runner`, for run-once and the daemon) calls three functions:

    route_events(db, config, *, batch_size=None, now=None, max_batches=None) -> RoutingSummary
    execute_due_steps(db, config, plugins, *, batch_size=None, now=None, max_batches=None)
        -> ExecutionSummary
    run_maintenance(db, config, *, now=None) -> MaintenanceSummary

They are imported on first use, so importing one module of the package (the sync engine's
customer merges need none of it) does not load the engine and the channels.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from blippsync.journeys.execution import ExecutionSummary, execute_due_steps
    from blippsync.journeys.retention import MaintenanceSummary, run_maintenance
    from blippsync.journeys.routing import RoutingSummary, route_events

_HOMES = {"ExecutionSummary": "execution", "execute_due_steps": "execution",
          "RoutingSummary": "routing", "route_events": "routing",
          "MaintenanceSummary": "retention", "run_maintenance": "retention"}
__all__ = ["ExecutionSummary", "MaintenanceSummary", "RoutingSummary", "execute_due_steps",
           "route_events", "run_maintenance"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
