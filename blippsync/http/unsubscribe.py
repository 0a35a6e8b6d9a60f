"""/u/<token>: the unsubscribe link of every email (and its List-Unsubscribe URL).

GET shows a confirmation page with one button and changes nothing: mail scanners and
link previewers follow links, and must not unsubscribe anyone. POST unsubscribes at once:
the page's button, and RFC 8058 one-click (a mail client POSTs
"List-Unsubscribe=One-Click" to the List-Unsubscribe URL, with no cookies or redirects).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

from markupsafe import Markup, escape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from blippsync.http.state import HttpState
from blippsync.journeys.unsubscribe import find_recipient, unsubscribe

TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")
_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title></head>
<body style="font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;max-width:32rem;\
margin:3rem auto;padding:0 1rem;line-height:1.5;color:#222;">
<h1 style="font-size:1.4rem;">{title}</h1>
{body}
</body></html>
"""


def _page(title: str, body: Markup, status: int = 200) -> HTMLResponse:
    return HTMLResponse(_PAGE.format(title=escape(title), body=body), status,
                        headers={"cache-control": "no-store", "referrer-policy": "no-referrer"})


def endpoint(state: HttpState) -> Callable[[Request], Awaitable[Response]]:
    async def unsubscribe_link(request: Request) -> Response:
        token = request.path_params["token"]
        if not TOKEN_PATTERN.match(token):
            return _invalid()
        if request.method == "POST":
            who = await run_in_threadpool(unsubscribe, state.db, token)
            if who is None:
                return _invalid()
            return _page("You are unsubscribed", Markup(
                "<p>{0} will send no more email to {1}.</p>").format(who.business,
                                                                    who.masked_email))
        who = await run_in_threadpool(find_recipient, state.db, token)
        if who is None:
            return _invalid()
        if who.opted_out:
            return _page("You are unsubscribed", Markup(
                "<p>{0} already sends no email to {1}.</p>").format(who.business,
                                                                   who.masked_email))
        return _page(f"Unsubscribe from {who.business}", Markup(
            '<p>Stop all email from {0} to {1}?</p><form method="post">'
            '<button type="submit" style="font-size:1rem;padding:.5rem 1.2rem;">'
            "Unsubscribe</button></form>").format(who.business, who.masked_email))

    return unsubscribe_link


def _invalid() -> HTMLResponse:
    return _page("Link not valid", Markup("<p>This unsubscribe link is not valid.</p>"), 404)
