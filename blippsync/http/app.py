"""The Starlette application and the state its handlers share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.routing import Route

from blippsync.config import Config
from blippsync.daemon.metrics import DaemonMetrics
from blippsync.database import Database


@dataclass
class HttpState:
    """What the handlers need; `scheduler_age` says how long since the scheduler ticked."""

    config: Config
    db: Database
    plugins: Any  # blippsync.plugins.Plugins
    metrics: DaemonMetrics
    scheduler_age: Callable[[], float | None] = field(default=lambda: None)
    daemon_id: str = ""


def build_app(state: HttpState) -> Starlette:
    from blippsync.http import feedback_pages, health, inbound_sms, review_links, webhooks

    routes = [
        Route("/webhooks/{connector}", webhooks.endpoint(state), methods=["POST"]),
        Route("/healthz", health.healthz_endpoint(state), methods=["GET"]),
        Route("/metrics", health.metrics_endpoint(state), methods=["GET"]),
        Route("/r/{token}", review_links.endpoint(state), methods=["GET", "HEAD"]),
        Route("/sms/twilio", inbound_sms.endpoint(state), methods=["POST"]),
        *feedback_pages.routes(state),
    ]
    app = Starlette(routes=routes)
    app.state.blippsync = state
    return app
