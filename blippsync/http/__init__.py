"""The daemon's HTTP surface: webhooks in, health and metrics out, review-link clicks.

Starlette routes served by uvicorn (see docs/deployment.md for why these two): no HTTP
is parsed by hand here. Handlers only verify, store and answer; the work a webhook
announces is done later by whichever daemon holds the connection's lease.
"""

from __future__ import annotations

from blippsync.http.app import build_app
from blippsync.http.server import HttpServer
from blippsync.http.state import HttpState

__all__ = ["HttpServer", "HttpState", "build_app"]
