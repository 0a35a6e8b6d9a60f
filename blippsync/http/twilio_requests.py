"""Requests Twilio makes to us (inbound SMS, status callbacks), verified before anything.

Twilio signs each request: X-Twilio-Signature is the base64 HMAC-SHA1, keyed by the auth
token, of the full public URL (query string included) followed by every distinct form
field's name and value, sorted by name. An unsigned or forged request gets 401 and changes nothing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from blippsync.http.state import HttpState
from blippsync.http.webhooks import BodyTooLarge, read_bounded

SIGNATURE_HEADER = "x-twilio-signature"


def twilio_signature(url: str, params: Sequence[tuple[str, str]], auth_token: str) -> str:
    """Twilio's scheme: each distinct field counts once (as in Twilio's own libraries)."""
    payload = url + "".join(k + v for k, v in sorted(set(params)))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def public_url(state: HttpState, request: Request) -> str:
    """The URL Twilio called: http.public_base_url + path + query (behind a proxy the
    request's own URL is not the one Twilio signed)."""
    base = state.config["http.public_base_url"].rstrip("/")
    if not base:
        return str(request.url)
    query = request.url.query
    return f"{base}{request.url.path}" + (f"?{query}" if query else "")


async def verified_form(state: HttpState, request: Request) -> dict[str, str] | Response:
    """The request's form fields when Twilio signed them; otherwise the error response."""
    token = state.config["twilio.auth_token"]
    if not token:
        return JSONResponse({"error": "twilio.auth_token is not configured"}, 404)
    limit = int(state.config["http.max_body_bytes"])
    try:
        body = await read_bounded(request, limit)
    except BodyTooLarge:
        return JSONResponse({"error": f"body over {limit} bytes"}, 413)
    params = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    given = request.headers.get(SIGNATURE_HEADER, "")
    expected = twilio_signature(public_url(state, request), params, token)
    # bytes: a header may carry any octet, and compare_digest refuses non-ASCII str
    if not hmac.compare_digest(given.encode("latin-1", "replace"), expected.encode()):
        return JSONResponse({"error": "bad or missing X-Twilio-Signature"}, 401)
    return dict(params)
