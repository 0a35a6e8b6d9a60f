"""The authorization-code flow with a loopback redirect: print the URL, wait for the
provider to send the browser back to 127.0.0.1, check `state`, hand back the code."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from blippsync.connector import OAuthClientSpec
from blippsync.errors import AuthError, InputError
from blippsync.vault.oauth import authorization_url

CALLBACK_PATH = "/callback"


@dataclass(frozen=True)
class Authorization:
    code: str = field(repr=False)
    redirect_uri: str
    params: dict[str, str] = field(repr=False)  # everything on the callback (realmId...)


def authorize(spec: OAuthClientSpec, show: Callable[[str], None], port: int = 0,
              timeout_seconds: float = 300.0, redirect_uri: str = "") -> Authorization:
    """Serve one callback on 127.0.0.1:`port`, show the consent URL, wait for the answer."""
    answer: dict[str, dict[str, str]] = {}
    done = threading.Event()
    state = secrets.token_urlsafe(24)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802
            parts = urlsplit(self.path)
            params = {k: v[0] for k, v in parse_qs(parts.query).items()}
            if parts.path != CALLBACK_PATH:
                self.send_response(404)
                self.end_headers()
                return
            ok = secrets.compare_digest(params.get("state", ""), state)
            self.send_response(200 if ok else 400)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            self.wfile.write(b"Connected: you can close this tab." if ok and "code" in params
                             else b"This answer does not match the request; nothing was stored.")
            if ok:
                answer["params"] = params
                done.set()

    server = HTTPServer(("127.0.0.1", port), Handler)
    redirect = redirect_uri or f"http://127.0.0.1:{server.server_address[1]}{CALLBACK_PATH}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        show(authorization_url(spec, redirect, state))
        if not done.wait(timeout_seconds):
            raise AuthError(f"no answer from the provider within {timeout_seconds:.0f}s")
    finally:
        server.shutdown()
        server.server_close()
    params = answer["params"]
    if "code" not in params:
        raise AuthError(f"authorization refused: {params.get('error', 'no code returned')}")
    if not params["code"].strip():
        raise InputError("authorization answer carried an empty code")
    return Authorization(code=params["code"], redirect_uri=redirect, params=params)
