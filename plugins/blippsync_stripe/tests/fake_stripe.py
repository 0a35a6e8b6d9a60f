"""A loopback stand-in for Stripe's subscriptions API, in its documented shapes.

`GET /v1/subscriptions?customer=&status=all&limit=&starting_after=` answers a list
envelope (`object: list`, `url`, `has_more`, `data`) of subscription objects, newest first
as Stripe lists them; a wrong key gets Stripe's 401 error envelope; `fail_next` queues
faults (429 rate limit, 500) the way the real API produces them.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

API_KEY = "sk_test_51Fake0000000000000000000000"


def subscription(sub_id: str, customer: str, status: str, created: int) -> dict[str, Any]:
    """A subscription object with the fields Stripe documents (trimmed of price details)."""
    return {
        "id": sub_id, "object": "subscription", "application": None,
        "billing_cycle_anchor": created, "cancel_at": None, "cancel_at_period_end": False,
        "canceled_at": created + 60 if status == "canceled" else None,
        "collection_method": "charge_automatically", "created": created, "currency": "usd",
        "customer": customer, "default_payment_method": None, "description": None,
        "ended_at": created + 60 if status == "canceled" else None,
        "items": {"object": "list", "data": [{
            "id": f"si_{sub_id[4:]}", "object": "subscription_item", "created": created,
            "current_period_start": created, "current_period_end": created + 2_592_000,
            "price": {"id": "price_1Blipp", "object": "price", "currency": "usd",
                      "unit_amount": 4900, "recurring": {"interval": "month"}},
            "quantity": 1, "subscription": sub_id}],
            "has_more": False, "url": f"/v1/subscription_items?subscription={sub_id}"},
        "latest_invoice": f"in_{sub_id[4:]}", "livemode": False, "metadata": {},
        "start_date": created, "status": status, "trial_end": None, "trial_start": None,
    }


class FakeStripe:
    def __init__(self) -> None:
        self.subscriptions: list[dict[str, Any]] = []
        self.requests: list[dict[str, Any]] = []
        self.fail_next: list[int] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                fake._answer(self)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeStripe:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        url = urlsplit(handler.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        self.requests.append({"path": url.path, **query})
        if handler.headers.get("Authorization") != f"Bearer {API_KEY}":
            return _send(handler, 401, {"error": {
                "message": "Invalid API Key provided: sk_test_****0000",
                "type": "invalid_request_error"}})
        if self.fail_next:
            status = self.fail_next.pop(0)
            kind = "rate_limit_error" if status == 429 else "api_error"
            return _send(handler, status, {"error": {"message": "Request rate limit exceeded."
                                                     if status == 429 else "An error occurred.",
                                                     "type": kind}})
        if url.path != "/v1/subscriptions":
            return _send(handler, 404, {"error": {"message": f"Unrecognized request URL "
                                                  f"(GET: {url.path}).",
                                                  "type": "invalid_request_error"}})
        rows = sorted((s for s in self.subscriptions
                       if s["customer"] == query.get("customer", s["customer"])
                       and (query.get("status") == "all" or s["status"] != "canceled")),
                      key=lambda s: (-s["created"], s["id"]))
        if "starting_after" in query:
            ids = [s["id"] for s in rows]
            rows = rows[ids.index(query["starting_after"]) + 1:]
        limit = int(query.get("limit", 10))
        _send(handler, 200, {"object": "list", "url": "/v1/subscriptions",
                             "has_more": len(rows) > limit, "data": rows[:limit]})


def _send(handler: BaseHTTPRequestHandler, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    handler.end_headers()
    handler.wfile.write(payload)
