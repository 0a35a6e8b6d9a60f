"""The Starlette application: one route per handler module."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route

from blippsync.http import (
    feedback_pages,
    health,
    inbound_sms,
    review_links,
    twilio_status,
    unsubscribe,
    webhooks,
)
from blippsync.http.state import HttpState


def build_app(state: HttpState) -> Starlette:
    routes: list[BaseRoute] = [
        Route("/webhooks/{connector}", webhooks.endpoint(state), methods=["POST"]),
        Route("/healthz", health.healthz_endpoint(state), methods=["GET"]),
        Route("/metrics", health.metrics_endpoint(state), methods=["GET"]),
        Route("/r/{token}", review_links.endpoint(state), methods=["GET", "HEAD"]),
        Route("/sms/twilio", inbound_sms.endpoint(state), methods=["POST"]),
        Route("/sms/twilio/status", twilio_status.endpoint(state), methods=["POST"]),
        Route("/u/{token}", unsubscribe.endpoint(state), methods=["GET", "POST"]),
        *feedback_pages.routes(state),
    ]
    if state.config["console.enabled"]:  # the operator console (docs/console.md)
        from blippsync.console import console_mount

        routes.append(console_mount(state.config, state.db))
    app = Starlette(routes=routes)
    app.state.blippsync = state
    return app
