"""POST /sms/twilio: SMS customers send back. A STOP opts the sender out of SMS at once.

Verified as every Twilio request is (`twilio_requests`). One sending number serves every
business, so a STOP reaches every business that has the sender as a customer, as the
carrier's opt-out does.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from blippsync.http.state import HttpState
from blippsync.http.twilio_requests import verified_form
from blippsync.journeys.inbound import record_inbound_sms
from blippsync.normalize import normalize_phone, storable

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
_BUSINESSES_WITH_PHONE = sa.text(
    "SELECT DISTINCT business_id FROM public.customers WHERE phone = :phone")


def endpoint(state: HttpState) -> Callable[[Request], Awaitable[Response]]:
    async def receive(request: Request) -> Response:
        fields = await verified_form(state, request)
        if isinstance(fields, Response):
            return fields
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
