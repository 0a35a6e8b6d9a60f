"""POST /webhooks/<connector>: verify over the raw body, store, answer at once.

The answer never waits for the fetch a notice asks for: senders want 200 within a few
seconds (QuickBooks: 3 s) and retry otherwise. A signed delivery that cannot be parsed
still gets 200 (Intuit: never make them retry a batch we will never understand), and is
logged and counted. Nothing is stored unless the signature holds.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from blippsync import webhook_inbox
from blippsync.config import connector_settings
from blippsync.connector import WebhookConnector
from blippsync.http.state import HttpState

log = logging.getLogger(__name__)

# QuickBooks' CloudEvents arrive as application/cloudevents+json (batch variant too). A
# connector may declare its own `webhook_content_types` (Jobber's oldest apps send forms).
ACCEPTED_CONTENT_TYPES = frozenset({"application/json", "application/cloudevents+json",
                                    "application/cloudevents-batch+json"})


class BodyTooLarge(Exception):
    pass


async def read_bounded(request: Request, limit: int) -> bytes:
    """The body, refusing to buffer more than `limit` bytes (chunked bodies included)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def endpoint(state: HttpState) -> Callable[[Request], Awaitable[Response]]:
    limit = int(state.config["http.max_body_bytes"])
    counter = state.metrics.webhook_deliveries

    async def receive(request: Request) -> Response:
        name = request.path_params["connector"]
        info = state.plugins.connectors.get(name)
        connector = info.connector if info is not None else None
        if connector is None or not isinstance(connector, WebhookConnector):
            return JSONResponse({"error": f"no webhook receiver for {name!r}"}, 404)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        accepted = getattr(connector, "webhook_content_types", ACCEPTED_CONTENT_TYPES)
        if ctype not in accepted:
            counter.labels(name, "unsupported_media_type").inc()
            return JSONResponse({"error": f"content type must be one of "
                                          f"{', '.join(sorted(accepted))}"}, 415)
        try:
            body = await read_bounded(request, limit)
        except BodyTooLarge:
            counter.labels(name, "too_large").inc()
            return JSONResponse({"error": f"body over {limit} bytes"}, 413)
        settings = connector_settings(state.config, name)
        try:
            authentic = connector.verify_webhook(request.headers, body, settings)
        except Exception as exc:  # a misconfigured secret: make the sender retry later
            log.error("webhook %s: cannot verify: %s: %s", name, type(exc).__name__, exc)
            counter.labels(name, "error").inc()
            return JSONResponse({"error": "cannot verify deliveries right now"}, 500)
        if not authentic:
            counter.labels(name, "bad_signature").inc()
            log.warning("webhook %s: bad signature from %s", name,
                        request.client.host if request.client else "?")
            return JSONResponse({"error": "bad signature"}, 401)
        try:
            notices = connector.parse_webhook(request.headers, body)
        except Exception as exc:
            counter.labels(name, "unparseable").inc()
            log.warning("webhook %s: signed delivery not understood: %s: %s", name,
                        type(exc).__name__, exc)
            return JSONResponse({"received": 0, "duplicates": 0, "ignored": True})
        try:
            new, seen = await run_in_threadpool(webhook_inbox.store, state.db, name, notices, body)
        except sa.exc.DataError as exc:  # a value no retry will make storable: acknowledge it
            counter.labels(name, "unparseable").inc()
            log.warning("webhook %s: signed delivery cannot be stored: %s", name,
                        str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__)
            return JSONResponse({"received": 0, "duplicates": 0, "ignored": True})
        except Exception as exc:  # database down: 503 makes the sender retry
            counter.labels(name, "error").inc()
            log.error("webhook %s: cannot store delivery: %s", name, exc)
            return JSONResponse({"error": "cannot store the delivery right now"}, 503)
        counter.labels(name, "accepted" if new or not seen else "redelivered").inc()
        return JSONResponse({"received": new, "duplicates": seen})

    return receive
