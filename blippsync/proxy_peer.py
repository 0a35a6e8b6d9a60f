"""The address that really connected, kept before X-Forwarded-For rewrites it.

uvicorn replaces the ASGI `client` with the X-Forwarded-For address when the peer is a
trusted proxy. That is right for logs, but the console must know whether the request came
*through* one of its trusted proxies (console.trusted_proxies) before believing a sign-in
header, and the rewritten client is the visitor. So the servers apply uvicorn's own
proxy-header middleware themselves (same trusted hosts: $FORWARDED_ALLOW_IPS, default
loopback), after noting the peer in the scope.
"""

from __future__ import annotations

import os
from typing import Any

from starlette.requests import Request
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

PEER_KEY = "blippsync.peer"


def keep_peer(app: Any) -> Any:
    """`app` behind uvicorn's proxy-header handling, with the real peer in the scope."""
    proxied = ProxyHeadersMiddleware(app, trusted_hosts=os.environ.get("FORWARDED_ALLOW_IPS",
                                                                       "127.0.0.1,::1"))

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket"):
            scope[PEER_KEY] = scope.get("client")
        await proxied(scope, receive, send)

    return asgi


def peer_host(request: Request) -> str | None:
    """The host of the connection itself (a proxy's address when there is one)."""
    peer = request.scope.get(PEER_KEY) or request.scope.get("client")
    return str(peer[0]) if peer else None
