"""The `stripe` connector: a business's billing status from Stripe (a connector that is
not a CRM). One connection per business, whose account id is its Stripe customer id.

Built on blippsync's plugin interfaces: the connector protocols, records (one added for
it: SubscriptionStatus), `ConnectorContext` and the hooks; README.md in this package says
what else it needed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from blippsync.connector import ConnectorContext, WebhookNotice
from blippsync.errors import ConnectorError
from blippsync.hookspecs import hookimpl
from blippsync.records import Checkpoint, Record, SubscriptionStatus
from blippsync.redaction import register_secret
from blippsync_stripe import api, events, signature

__version__ = "0.1.0"
DEFAULT_BASE_URL = "https://api.stripe.com"


class StripeConnector:
    name = "stripe"
    version = __version__
    events: Sequence[str] = ()  # it changes billing status; it starts no journey
    needs_oauth = False
    credentials = ("api_key",)  # ctx.credentials: the vault, or [plugins.stripe] api_key
    webhook_content_types = frozenset({"application/json"})

    # -- reconciliation -------------------------------------------------------------------

    def sync(self, ctx: ConnectorContext) -> Iterator[Record]:
        customer = ctx.account_id
        if not customer.startswith("cus_"):
            raise ConnectorError(f"stripe: the connection's account id {customer!r} is not a "
                                 "Stripe customer id (cus_...); link it with "
                                 "`blippsync stripe link`")
        key = ctx.credentials.get("api_key") or ""
        if not key:
            raise ConnectorError("stripe: no API key: set [plugins.stripe] api_key "
                                 "(for example { \"$env\" = \"STRIPE_API_KEY\" })")
        as_of = ctx.now or datetime.now(UTC)  # read before listing: later events stay newer
        found = list(api.list_subscriptions(
            ctx.http, str(ctx.settings.get("base_url") or DEFAULT_BASE_URL), key, customer,
            page_size=int(ctx.settings.get("page_size") or api.PAGE_SIZE),
            api_version=str(ctx.settings.get("api_version") or api.API_VERSION)))
        chosen = api.current(found)
        if chosen is None:
            ctx.log.info("stripe: customer %s has no subscriptions", customer)
        else:
            yield SubscriptionStatus(status=str(chosen["status"]), as_of=as_of,
                                     subscription_id=str(chosen["id"]),
                                     location=f"stripe reconciliation of {customer}")
        yield Checkpoint({"reconciled_at": as_of.isoformat(), "subscriptions": len(found)})

    # -- webhooks -------------------------------------------------------------------------

    def verify_webhook(self, headers: Mapping[str, str], body: bytes,
                       settings: Mapping[str, Any]) -> bool:
        secrets = _secrets(settings.get("webhook_secret"))
        if not secrets:
            raise ConnectorError("stripe: [plugins.stripe] webhook_secret is not set")
        header = next((v for k, v in headers.items() if k.lower() == signature.HEADER), "")
        tolerance = int(settings.get("tolerance_seconds", signature.DEFAULT_TOLERANCE_SECONDS))
        return signature.verify(header, body, secrets, now=time.time(),
                                tolerance_seconds=tolerance)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookNotice]:
        return events.notices_from(body)

    def fetch(self, ctx: ConnectorContext, notices: Sequence[WebhookNotice]) -> Iterator[Record]:
        """The signed event already carries the status and its time: nothing to fetch."""
        yield from events.statuses_from(notices, ctx.account_id)


def _secrets(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) else str(value or "").split(",")
    found = [str(s).strip() for s in items if str(s).strip()]
    for secret in found:
        register_secret(secret)
    return found


@hookimpl
def register_connectors(register: Any) -> None:
    register(StripeConnector())


@hookimpl
def register_commands(cli: Any) -> None:
    from blippsync_stripe.commands import stripe

    cli.add_command(stripe)
