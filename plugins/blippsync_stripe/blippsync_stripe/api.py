"""Reading subscriptions from Stripe's API for the reconciliation pass.

`GET /v1/subscriptions?customer=<id>&status=all&limit=<n>` answers a list envelope
(`{"object": "list", "data": [...], "has_more": bool}`); the next page starts after the
last id of this one (`starting_after`). Errors come as `{"error": {"type", "message"}}`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import httpx

from blippsync.errors import ConnectorError, TransientError

PAGE_SIZE = 100  # Stripe's maximum
API_VERSION = "2024-06-20"  # the shapes this connector was written against (Stripe-Version)
MAX_PAGES = 1000
TERMINAL = frozenset({"canceled", "incomplete_expired"})


def list_subscriptions(http: httpx.Client, base_url: str, api_key: str, customer: str, *,
                       page_size: int = PAGE_SIZE, api_version: str = API_VERSION
                       ) -> Iterator[Mapping[str, Any]]:
    params: dict[str, Any] = {"customer": customer, "status": "all", "limit": page_size}
    headers = {"Authorization": f"Bearer {api_key}", "Stripe-Version": api_version}
    for _ in range(MAX_PAGES):
        try:
            response = http.get(f"{base_url.rstrip('/')}/v1/subscriptions", params=params,
                                headers=headers)
        except httpx.HTTPError as exc:
            raise TransientError(f"stripe: cannot reach the API: {type(exc).__name__}") from None
        page = _checked(response)
        data = page.get("data") or []
        yield from data
        if not page.get("has_more") or not data:
            return
        params["starting_after"] = data[-1]["id"]
    raise ConnectorError(f"stripe: more than {MAX_PAGES} pages of subscriptions for {customer}")


def current(subscriptions: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The subscription that decides the business's status: the newest live one, else the
    newest of all (a customer who canceled and subscribed again is billed by the new one)."""
    live = [s for s in subscriptions if s.get("status") not in TERMINAL]
    pool = live or subscriptions
    return max(pool, key=lambda s: (int(s.get("created") or 0), str(s.get("id")))) if pool \
        else None


def _checked(response: httpx.Response) -> Mapping[str, Any]:
    if response.status_code == 200:
        body = response.json()
        if not isinstance(body, dict) or body.get("object") != "list":
            raise ConnectorError("stripe: /v1/subscriptions did not answer a list")
        return body
    try:
        message = str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        message = response.reason_phrase
    if response.status_code in (401, 403):  # the platform's key, not this connection's
        raise ConnectorError(f"stripe: the API key was refused (HTTP {response.status_code}): "
                             f"{message}; check [plugins.stripe] api_key")
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientError(f"stripe: HTTP {response.status_code}: {message}")
    raise ConnectorError(f"stripe: HTTP {response.status_code}: {message}")
