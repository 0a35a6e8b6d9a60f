"""GET /healthz and GET /metrics.

/healthz answers 503 only for what makes this replica useless (the database unreachable,
the scheduler stuck), so an orchestrator restarts it for the right reasons. It is served
on the public port, so by default it says only that: {"status": "ok" | "unhealthy"}. The
details (database error, scheduler age, connections that need their owner, which name
businesses and accounts) need `Authorization: Bearer <http.health_token>`.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from blippsync.connections import NEEDS_HUMAN_SQL
from blippsync.http.state import HttpState

DB_CHECK_TIMEOUT_SECONDS = 3.0
PROBLEMS_SQL = sa.text("""
SELECT c.id, c.business_id, c.connector, c.account_id, c.status, c.status_reason,
       c.last_error, c.consecutive_failures, c.last_success_at
FROM public.connections AS c
WHERE """ + NEEDS_HUMAN_SQL + """
ORDER BY c.business_id, c.connector
LIMIT 100
""")


def _check_database(state: HttpState) -> list[dict[str, Any]]:
    with state.db.connect() as conn:
        conn.execute(sa.text("SET LOCAL statement_timeout = '2s'"))
        return [{k: str(v) if v is not None else None for k, v in r._mapping.items()}
                for r in conn.execute(PROBLEMS_SQL)]


async def health_report(state: HttpState) -> tuple[bool, dict[str, Any]]:
    report: dict[str, Any] = {"daemon": state.daemon_id}
    try:
        problems = await asyncio.wait_for(run_in_threadpool(_check_database, state),
                                          DB_CHECK_TIMEOUT_SECONDS)
        report["database"] = {"ok": True}
        report["connections_needing_attention"] = problems
    except Exception as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else _one_line(exc)
        report["database"] = {"ok": False, "error": reason}
    age = state.scheduler_age()
    stale = float(state.config["http.stale_tick_seconds"])
    report["scheduler"] = {"ok": age is not None and age < stale,
                           "seconds_since_tick": None if age is None else round(age, 3)}
    healthy = report["database"]["ok"] and report["scheduler"]["ok"]
    report["status"] = "ok" if healthy else "unhealthy"
    return healthy, report


def may_see_details(state: HttpState, request: Request) -> bool:
    """Only with the configured health token (compared as bytes, in constant time)."""
    token = state.config["http.health_token"]
    given = request.headers.get("authorization", "")
    scheme, _, value = given.partition(" ")
    return bool(token) and scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode("utf-8", "surrogateescape"), token.encode())


def healthz_endpoint(state: HttpState) -> Callable[[Request], Awaitable[Response]]:
    async def healthz(request: Request) -> Response:
        healthy, report = await health_report(state)
        body = report if may_see_details(state, request) else {"status": report["status"]}
        return JSONResponse(body, 200 if healthy else 503)

    return healthz


def metrics_endpoint(state: HttpState) -> Callable[[Request], Awaitable[Response]]:
    async def metrics(request: Request) -> Response:
        payload = await run_in_threadpool(generate_latest, state.metrics.registry)
        return Response(payload, media_type=CONTENT_TYPE_LATEST)

    return metrics


def _one_line(exc: BaseException) -> str:
    from blippsync.redaction import redact

    text = str(exc).strip().splitlines()
    return redact(f"{type(exc).__name__}: {text[0] if text else ''}")
