"""What the HTTP handlers share: configuration, database, plugins, metrics, liveness."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from blippsync.config import Config
from blippsync.database import Database
from blippsync.metrics import DaemonMetrics
from blippsync.plugins import Plugins


@dataclass
class HttpState:
    """What the handlers need; `scheduler_age` says how long since the scheduler ticked."""

    config: Config
    db: Database
    plugins: Plugins
    metrics: DaemonMetrics
    scheduler_age: Callable[[], float | None] = field(default=lambda: None)
    daemon_id: str = ""
