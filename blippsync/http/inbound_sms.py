"""POST /sms/twilio: SMS customers send back. A STOP opts the sender out of SMS at once.

Twilio signs each request (X-Twilio-Signature: base64 HMAC-SHA1, keyed by the auth token,
of the public URL followed by the sorted form fields); an unsigned or forged request gets
401 and changes nothing. One sending number serves every business, so a STOP reaches
every business that has the sender as a customer, as the carrier's opt-out does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import parse_qsl

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from blippsync.http.state import HttpState
from blippsync.http.webhooks import BodyTooLarge, read_bounded
from blippsync.journeys.inbound import record_inbound_sms
from blippsync.normalize import normalize_phone, storable

SIGNATURE_HEADER = "x-twilio-signature"
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
_BUSINESSES_WITH_PHONE = sa.text(
    "SELECT DISTINCT business_id FROM public.customers WHERE phone = :phone")


def twilio_signature(url: str, params: Sequence[tuple[str, str]], auth_token: str) -> str:
    """Twilio's scheme: each distinct field counts once (as in Twilio's own libraries)."""
    payload = url + "".join(k + v for k, v in sorted(set(params)))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signed_url(public_base_url: str, request: Request) -> str:
    """The URL Twilio signed: the public base (behind a proxy) with our path and the query
    string exactly as received, else the request's own URL."""
    base = public_base_url.rstrip("/")
    if not base:
        return str(request.url)
    query = request.url.query
    return f"{base}{request.url.path}" + (f"?{query}" if query else "")


def endpoint(state: HttpState) -> Callable[[Request], Awaitable[Response]]:
    limit = int(state.config["http.max_body_bytes"])

    async def receive(request: Request) -> Response:
        token = state.config["twilio.auth_token"]
        if not token:
            return JSONResponse({"error": "twilio.auth_token is not configured"}, 404)
        try:
            body = await read_bounded(request, limit)
        except BodyTooLarge:
            return JSONResponse({"error": f"body over {limit} bytes"}, 413)
        params = parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True)
        url = signed_url(state.config["http.public_base_url"], request)
        given = request.headers.get(SIGNATURE_HEADER, "")
        expected = twilio_signature(url, params, token)
        # bytes: a header may carry any octet, and compare_digest refuses non-ASCII str
        if not hmac.compare_digest(given.encode("latin-1", "replace"), expected.encode()):
            return JSONResponse({"error": "bad or missing X-Twilio-Signature"}, 401)
        fields = dict(params)
        sender, _problem = normalize_phone(fields.get("From"), "US")
        if sender:
            await run_in_threadpool(_record, state, sender, storable(fields.get("Body", "")),
                                    storable(fields.get("MessageSid")))
        return Response(EMPTY_TWIML, media_type="application/xml")

    return receive


def _record(state: HttpState, sender: str, text: str, message_sid: str | None) -> None:
    with state.db.connect() as conn:
        businesses = [r[0] for r in conn.execute(_BUSINESSES_WITH_PHONE, {"phone": sender})]
    for business_id in businesses:
        record_inbound_sms(state.db, business_id, sender, text,
                           provider_id=f"{message_sid}:{business_id}" if message_sid else None)
