"""POST /sms/twilio/status: Twilio's StatusCallback for the SMS we sent.

Verified as every Twilio request is (`twilio_requests`). MessageStatus delivered,
undelivered or failed updates the message's review_requests row (with ErrorCode); the
intermediate statuses (queued, sending, sent) change nothing. Permanent carrier errors
stop SMS to the number (see `channels.twilio.PERMANENT_FAILURES`). Twilio gets 200 for
any signed report, known message or not, so it never retries one we cannot use.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from blippsync.channels.twilio import PERMANENT_FAILURES, UNREACHABLE_CODE, UNREACHABLE_LIMIT
from blippsync.http.state import HttpState
from blippsync.http.twilio_requests import verified_form
from blippsync.journeys.delivery_status import FINAL_STATUSES, StatusReport, record_delivery_status


def endpoint(state: HttpState) -> Callable[[Request], Awaitable[Response]]:
    async def status(request: Request) -> Response:
        fields = await verified_form(state, request)
        if isinstance(fields, Response):
            return fields
        sid = fields.get("MessageSid") or fields.get("SmsSid")
        outcome = (fields.get("MessageStatus") or fields.get("SmsStatus") or "").lower()
        if not sid or outcome not in FINAL_STATUSES:
            return JSONResponse({"updated": False})
        code = fields.get("ErrorCode") or None
        report = StatusReport(provider_id=sid, status=outcome, error_code=code,
                              error=_explain(code) if outcome != "delivered" else None)
        updated = await run_in_threadpool(
            record_delivery_status, state.db, report, permanent=PERMANENT_FAILURES,
            repeat_code=UNREACHABLE_CODE, repeat_limit=UNREACHABLE_LIMIT)
        return JSONResponse({"updated": updated})

    return status


def _explain(code: str | None) -> str:
    if code is None:
        return "twilio: not delivered (no error code)"
    what = PERMANENT_FAILURES.get(code) or ("handset unreachable" if code == UNREACHABLE_CODE
                                            else "see https://www.twilio.com/docs/api/errors/"
                                                 + code)
    return f"twilio error {code}: {what}"
