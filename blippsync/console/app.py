"""The console's routes: overview, business, customer, search, sign-in; a Starlette app
mounted under `console.path` by `blippsync run` and served alone by `blippsync console`.

Read-only: the only POSTs sign in and out, and the session cookie is SameSite=Strict, so a
forged cross-site request can change nothing. Every page but the sign-in form needs an
operator; the sign-in form and the stylesheet carry no tenant data.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl, quote

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route

from blippsync.config import Config
from blippsync.console import queries
from blippsync.console.auth import COOKIE_NAME, Access, verify_password
from blippsync.database import Database
from blippsync.errors import ConfigError, DatabaseError, NotFoundError
from blippsync.journeys.rules import REASONS
from blippsync.proxy_peer import peer_host
from blippsync.redaction import redact
from blippsync.status import age_text

FAILED_SIGN_IN_DELAY_SECONDS = 1.0
MAX_FORM_BYTES = 4096
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
    "x-frame-options": "DENY",
}
Handler = Callable[[Request, str], Awaitable[Response]]

_templates = Environment(loader=PackageLoader("blippsync.console", "templates"),
                         autoescape=select_autoescape(["html"], default=True),
                         trim_blocks=True, lstrip_blocks=True)


def _when(value: Any) -> Markup:
    """Times are shown in UTC (the footer says so), whatever the session's time zone."""
    if value is None:
        return Markup('<span class="t muted">never</span>')
    text = (value.astimezone(UTC) if value.tzinfo else value).strftime("%Y-%m-%d %H:%M")
    return Markup('<span class="t">{}</span>').format(text)


_templates.filters["when"] = _when
_templates.filters["age"] = age_text
_templates.filters["num"] = lambda n: f"{n:,}" if isinstance(n, int) else n


def _stylesheet() -> bytes:
    return resources.files("blippsync.console").joinpath("style.css").read_bytes()


def build_console(config: Config, db: Database) -> Starlette:
    """The console app; raises ConfigError when no sign-in method is configured."""
    access = Access.from_config(config)
    country = str(config["sync.default_country"])
    stylesheet = _stylesheet()

    def base(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def secure(request: Request) -> bool:
        if request.url.scheme == "https":  # direct TLS, or a proxy uvicorn trusts said so
            return True
        return (access.trusted(peer_host(request))
                and request.headers.get("x-forwarded-proto", "").lower() == "https")

    def html(request: Request, template: str, status: int = 200, **context: Any) -> Response:
        started = request.scope.get("blippsync.started", time.perf_counter())
        body = _templates.get_template(template).render(
            base=base(request), render_ms=(time.perf_counter() - started) * 1000, **context)
        return HTMLResponse(body, status, headers=SECURITY_HEADERS)

    def operator_of(request: Request) -> str | None:
        return (access.proxy_operator(dict(request.headers), peer_host(request))
                or access.operator(request.cookies.get(COOKIE_NAME)))

    def page(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            request.scope["blippsync.started"] = time.perf_counter()
            operator = operator_of(request)
            if operator is None:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"{base(request)}/login?next={quote(target)}", 303,
                                        headers=SECURITY_HEADERS)
            try:
                return await handler(request, operator)
            except NotFoundError as exc:
                return html(request, "problem.html", 404, operator=operator,
                            heading="Not found", message=str(exc))
            except DatabaseError as exc:  # says which server, never its password
                return html(request, "problem.html", 503, operator=operator,
                            heading="The database cannot be reached", message=redact(str(exc)))

        return guarded

    def _id(request: Request, name: str) -> uuid.UUID:
        try:
            return uuid.UUID(request.path_params[name])
        except ValueError:
            raise NotFoundError(f"{request.path_params[name]!r} is not an id") from None

    async def overview(request: Request, operator: str) -> Response:
        data = await run_in_threadpool(queries.overview, db)
        return html(request, "overview.html", operator=operator, **data)

    async def business(request: Request, operator: str) -> Response:
        data = await run_in_threadpool(queries.business, db, _id(request, "id"))
        return html(request, "business.html", operator=operator, **data)

    async def customer(request: Request, operator: str) -> Response:
        report = await run_in_threadpool(queries.customer, db, _id(request, "id"))
        return html(request, "customer.html", operator=operator, reasons=REASONS, **report)

    async def search(request: Request, operator: str) -> Response:
        q = request.query_params.get("q", "")[:200]
        scope = request.query_params.get("business") or None
        try:
            business_id = uuid.UUID(scope) if scope else None
        except ValueError:
            business_id = None
        results = await run_in_threadpool(queries.search, db, q, business_id, country)
        business = (await run_in_threadpool(queries.business_name, db, business_id)
                    if business_id else None)
        return html(request, "search.html", operator=operator, q=q, business_id=business_id,
                    business=business, results=results, limit=queries.SEARCH_LIMIT)

    def safe_next(request: Request, target: str | None) -> str:
        root = base(request)
        if target and target.startswith(root + "/") and not target.startswith("//") \
                and "\\" not in target and "/login" not in target:
            return target
        return root + "/"

    async def sign_in_form(request: Request) -> Response:
        if operator_of(request) is not None:
            return RedirectResponse(safe_next(request, request.query_params.get("next")), 303)
        return html(request, "login.html", next=request.query_params.get("next", ""),
                    password=bool(access.password_hash), proxy=access.proxy_header, error=None)

    async def sign_in(request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_FORM_BYTES:
                return Response("form too large", 413, headers=SECURITY_HEADERS)
        fields = dict(parse_qsl(body.decode("utf-8", errors="replace")))
        target = safe_next(request, fields.get("next"))
        password = fields.get("password", "")
        ok = bool(access.password_hash and password) and await run_in_threadpool(
            verify_password, password, access.password_hash)
        if not ok:
            await asyncio.sleep(FAILED_SIGN_IN_DELAY_SECONDS)  # slows guessing down
            return html(request, "login.html", 401, next=fields.get("next", ""),
                        password=bool(access.password_hash), proxy=access.proxy_header,
                        error="That password is not right.")
        response = RedirectResponse(target, 303, headers=SECURITY_HEADERS)
        response.set_cookie(COOKIE_NAME, access.issue("operator"), max_age=access.session_seconds,
                            path=base(request) + "/", httponly=True, samesite="strict",
                            secure=secure(request))
        return response

    async def sign_out(request: Request) -> Response:
        response = RedirectResponse(f"{base(request)}/login", 303, headers=SECURITY_HEADERS)
        response.delete_cookie(COOKIE_NAME, path=base(request) + "/", httponly=True,
                               samesite="strict", secure=secure(request))
        return response

    async def style(request: Request) -> Response:
        return Response(stylesheet, media_type="text/css",
                        headers={"cache-control": "max-age=3600",
                                 "x-content-type-options": "nosniff"})

    routes = [
        Route("/", page(overview), methods=["GET"]),
        Route("/b/{id}", page(business), methods=["GET"]),
        Route("/c/{id}", page(customer), methods=["GET"]),
        Route("/search", page(search), methods=["GET"]),
        Route("/login", sign_in_form, methods=["GET"]),
        Route("/login", sign_in, methods=["POST"]),
        Route("/logout", sign_out, methods=["POST"]),
        Route("/style.css", style, methods=["GET"]),
    ]
    return Starlette(routes=routes)


def console_path(config: Config) -> str:
    """console.path, checked: an absolute path other than the root, without a trailing /."""
    path = "/" + str(config["console.path"]).strip().strip("/")
    if path == "/" or any(part in ("", ".", "..") for part in path.split("/")[1:]):
        raise ConfigError(f"console.path must be a path below / such as /console "
                          f"(got {config['console.path']!r})")
    return path


def check_console(config: Config) -> None:
    """Refuse, before anything starts, a console nobody could sign in to or mount."""
    console_path(config)
    Access.from_config(config)


def console_mount(config: Config, db: Database) -> Mount:
    """The console as a route of a larger app (`blippsync run`'s)."""
    return Mount(console_path(config), app=build_console(config, db))


def standalone_app(config: Config, db: Database) -> Starlette:
    """`blippsync console`: the console alone, `/` sending visitors to it."""
    path = console_path(config)

    async def home(request: Request) -> Response:
        return RedirectResponse(f"{path}/", 307)

    return Starlette(routes=[Route("/", home, methods=["GET"]), console_mount(config, db)])
