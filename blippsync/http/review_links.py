"""GET /r/<token>: the link in a review request. Records the click, sends the customer on.

The token is the review_requests.review_token the journey engine wrote when it sent the
request; the journey engine's `record_review_click` stamps the first click (and stops the
enrollment's remaining review asks). HEAD requests (link previewers) are redirected
without counting.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from blippsync.google_review import review_url
from blippsync.http.state import HttpState

TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{8,128}$")

PEEK_SQL = sa.text("""
SELECT b.google_review_url, b.google_place_id FROM public.review_requests AS r
JOIN public.businesses AS b ON b.id = r.business_id WHERE r.review_token = :token
""")


def follow(state: HttpState, token: str, record: bool) -> tuple[bool, str | None]:
    """(found, where to send the customer: a validated Google review URL or None); a GET
    records the click (journey engine)."""
    if record:
        from blippsync.journeys.inbound import record_review_click

        if not record_review_click(state.db, token):
            return False, None
    with state.db.connect() as conn:
        row = conn.execute(PEEK_SQL, {"token": token}).first()
    if row is None:
        return False, None
    return True, review_url(row.google_review_url, row.google_place_id)


def endpoint(state: HttpState) -> Callable[[Request], Awaitable[Response]]:
    async def review_link(request: Request) -> Response:
        token = request.path_params["token"]
        if not TOKEN_PATTERN.match(token):
            return PlainTextResponse("This review link is not valid.", 404)
        found, url = await run_in_threadpool(follow, state, token, request.method == "GET")
        if not found:
            return PlainTextResponse("This review link is not valid.", 404)
        if not url:
            return PlainTextResponse("Thank you! This business has no review page set up yet.")
        return RedirectResponse(url, status_code=302)

    return review_link
