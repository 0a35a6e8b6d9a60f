"""The hosted feedback pages: GET/POST /f/<token> (from a review request) and /q/<code>
(a printed QR code), with their thank-you pages.

`/q/<code>` counts the scan and redirects (303) to `/q/<code>/feedback`, so a reload of the
form does not count again. Forms are protected by signed double-submit tokens (see csrf);
every page offers the business's public Google review link, whatever the rating. Unknown,
retired or malformed links get a friendly 404 page, and floods get 429 pages, never errors:
counted scans are limited per code and client and per code, requests per client, and the
limiters' memory is bounded.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jinja2
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from blippsync.feedback import (
    MAX_COMMENT_CHARS,
    FeedbackTarget,
    record_scan,
    submit_feedback,
    target_for_code,
    target_for_token,
)
from blippsync.http import csrf
from blippsync.http.rate_limit import RateLimiter
from blippsync.http.review_links import TOKEN_PATTERN
from blippsync.http.state import HttpState
from blippsync.http.webhooks import BodyTooLarge, read_bounded
from blippsync.qr_codes import CODE_PATTERN

TEMPLATES = Path(__file__).with_name("templates")
RATING_WORDS = {1: "poor", 2: "fair", 3: "good", 4: "very good", 5: "excellent"}
FORM_BODY_MAX_BYTES = 16_384
# Limits (per replica): pages per client; counted scans per code and client, and per code.
PAGES_PER_CLIENT_PER_MINUTE = 60
SCANS_COUNTED_PER_CODE_AND_CLIENT = 3  # per 10 minutes: a re-scan is not a new customer
SCANS_COUNTED_PER_CODE_PER_HOUR = 600
POSTS_PER_CLIENT_PER_10_MINUTES = 20
_COUNT_WINDOW_SECONDS = 600.0
_SECURITY_HEADERS = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff",
                     "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
                     "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                                "form-action 'self'; frame-ancestors 'none'"}

_env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                          undefined=jinja2.StrictUndefined)


class _Guards:
    def __init__(self) -> None:
        self.pages = RateLimiter(PAGES_PER_CLIENT_PER_MINUTE, 60.0)
        self.scan_per_client = RateLimiter(SCANS_COUNTED_PER_CODE_AND_CLIENT, _COUNT_WINDOW_SECONDS)
        self.scan_per_code = RateLimiter(SCANS_COUNTED_PER_CODE_PER_HOUR, 3600.0, max_keys=2_000)
        self.posts = RateLimiter(POSTS_PER_CLIENT_PER_10_MINUTES, _COUNT_WINDOW_SECONDS)


def routes(state: HttpState) -> list[Route]:
    pages = _Pages(state)
    return [
        Route("/q/{code}", pages.scan, methods=["GET", "HEAD"]),
        Route("/q/{code}/feedback", pages.code_form, methods=["GET", "POST"]),
        Route("/q/{code}/thanks", pages.code_thanks, methods=["GET"]),
        Route("/f/{token}", pages.token_form, methods=["GET", "POST"]),
        Route("/f/{token}/thanks", pages.token_thanks, methods=["GET"]),
    ]


class _Pages:
    def __init__(self, state: HttpState) -> None:
        self.state = state
        self.guards = _Guards()
        self.forms = csrf.FormGuard(state.db)
        self.secure_cookie = state.config["http.public_base_url"].lower().startswith("https://")

    # -- QR codes ------------------------------------------------------------------------

    async def scan(self, request: Request) -> Response:
        code = request.path_params["code"]
        client = _client(request)
        if not self.guards.pages.allow(client):
            return _too_many()
        if not CODE_PATTERN.match(code):
            return _not_found()
        counted = (request.method == "GET" and self.guards.scan_per_client.allow((code, client))
                   and self.guards.scan_per_code.allow(code))
        if counted:
            known = await run_in_threadpool(record_scan, self.state.db, code)
        else:  # previewers (HEAD) and repeats are redirected without being counted
            known = await run_in_threadpool(target_for_code, self.state.db, code) is not None
        scans = self.state.metrics.qr_scans
        if not known:
            scans.labels("unknown").inc()
            return _not_found()
        scans.labels("counted" if counted else "not_counted").inc()
        return RedirectResponse(f"/q/{code}/feedback", status_code=303,
                                headers=_SECURITY_HEADERS)

    async def code_form(self, request: Request) -> Response:
        code = request.path_params["code"]
        return await self._form(request, code if CODE_PATTERN.match(code) else None,
                                target_for_code, f"/q/{code}")

    async def code_thanks(self, request: Request) -> Response:
        code = request.path_params["code"]
        return await self._thanks(request, code if CODE_PATTERN.match(code) else None,
                                  target_for_code, review_href=None)

    # -- review requests -----------------------------------------------------------------

    async def token_form(self, request: Request) -> Response:
        token = request.path_params["token"]
        return await self._form(request, token if TOKEN_PATTERN.match(token) else None,
                                target_for_token, f"/f/{token}")

    async def token_thanks(self, request: Request) -> Response:
        token = request.path_params["token"]
        return await self._thanks(request, token if TOKEN_PATTERN.match(token) else None,
                                  target_for_token, review_href=f"/r/{token}")

    # -- shared --------------------------------------------------------------------------

    async def _form(self, request: Request, key: str | None,
                    find: Callable[[Any, str], FeedbackTarget | None], base: str) -> Response:
        if not self.guards.pages.allow(_client(request)):
            return _too_many()
        target = await run_in_threadpool(find, self.state.db, key) if key else None
        if target is None:
            return _not_found()
        action = f"{base}/feedback" if base.startswith("/q/") else base
        review_href = _review_href(target, base)
        await run_in_threadpool(self.forms.load_key)  # off the event loop (cached after once)
        if request.method == "GET":
            return self._render_form(request, target, action, review_href)
        posts = self.state.metrics.feedback_posts
        if not self.guards.posts.allow(_client(request)):
            posts.labels("rate_limited").inc()
            return _too_many()
        try:
            fields = await _form_fields(request)
        except BodyTooLarge:
            return _page("message.html", 413, heading="That was too long",
                         text="Please shorten your comment and try again.", business_name="")
        nonce = request.cookies.get(csrf.COOKIE)
        if not self.forms.valid(nonce, action, fields.get(csrf.FIELD)):
            posts.labels("forged").inc()
            return self._render_form(request, target, action, review_href, status=403,
                                     error="This form expired. Please choose your rating again.",
                                     comment=fields.get("comment"))
        rating = _rating(fields.get("rating"))
        if rating is None:
            posts.labels("invalid").inc()
            return self._render_form(request, target, action, review_href, status=422,
                                     error="Please choose a rating from 1 to 5 stars.",
                                     comment=fields.get("comment"))
        low_max = int(self.state.config["feedback.low_rating_max"])
        await run_in_threadpool(submit_feedback, self.state.db, target, rating,
                                fields.get("comment"), low_rating_max=low_max)
        posts.labels("low_rating" if rating <= low_max else "stored").inc()
        return RedirectResponse(f"{base}/thanks", status_code=303, headers=_SECURITY_HEADERS)

    def _render_form(self, request: Request, target: FeedbackTarget, action: str,
                     review_href: str | None, *, status: int = 200, error: str | None = None,
                     comment: str | None = None) -> Response:
        nonce = request.cookies.get(csrf.COOKIE) or ""
        fresh = len(nonce) < csrf.NONCE_CHARS
        if fresh:
            nonce = csrf.FormGuard.new_nonce()
        first_name = (target.customer_name or "").strip().partition(" ")[0]
        response = _page("feedback.html", status, business_name=target.business_name,
                         first_name=first_name, tech_name=target.tech_name, action=action,
                         csrf_token=self.forms.token(nonce, action), error=error,
                         rating=target.previous_rating, comment=comment, words=RATING_WORDS,
                         max_comment=MAX_COMMENT_CHARS, review_href=review_href)
        if fresh:
            response.set_cookie(csrf.COOKIE, nonce, max_age=86_400, httponly=True,
                                samesite="lax", secure=self.secure_cookie)
        return response

    async def _thanks(self, request: Request, key: str | None,
                      find: Callable[[Any, str], FeedbackTarget | None],
                      review_href: str | None) -> Response:
        if not self.guards.pages.allow(_client(request)):
            return _too_many()
        target = await run_in_threadpool(find, self.state.db, key) if key else None
        if target is None:
            return _not_found()
        href = (review_href or target.review_url) if target.review_url else None
        return _page("thanks.html", 200, business_name=target.business_name, review_href=href)


def _review_href(target: FeedbackTarget, base: str) -> str | None:
    """Through /r/<token> for a review request (the click is recorded), straight to Google
    for a QR code; None when the business has no usable review URL."""
    if not target.review_url:
        return None
    return f"/r/{base[3:]}" if base.startswith("/f/") else target.review_url


def _page(template: str, status: int, **values: Any) -> HTMLResponse:
    html = _env.get_template(template).render(**values)
    return HTMLResponse(html, status_code=status, headers=_SECURITY_HEADERS)


def _not_found() -> Response:
    return _page("message.html", 404, business_name="", heading="This link is not active",
                 text="The code or link you followed is not in use any more. If you were "
                      "asked for feedback, please contact the business directly. Thank you!")


def _too_many() -> Response:
    response = _page("message.html", 429, business_name="", heading="One moment, please",
                     text="We received many requests from your connection. Please try again "
                          "in a minute.")
    response.headers["Retry-After"] = "60"
    return response


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"


async def _form_fields(request: Request) -> dict[str, str]:
    from urllib.parse import parse_qsl

    body = await read_bounded(request, FORM_BODY_MAX_BYTES)
    return dict(parse_qsl(body.decode("utf-8", errors="replace"), keep_blank_values=True))


def _rating(value: str | None) -> int | None:
    return int(value) if value and re.fullmatch(r"[1-5]", value.strip()) else None
