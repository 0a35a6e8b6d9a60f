"""The QuickBooks Online connector: customers and invoice_paid events, by query or CDC,
and targeted fetches for webhook notices. A pure producer: it reads the API through
ctx.http and ctx.tokens and yields records; the core writes them."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from blippsync.connector import ConnectorContext, OAuthClientSpec, WebhookNotice
from blippsync.records import Checkpoint, CustomerMerge, Record
from connectors.quickbooks import incremental, webhooks
from connectors.quickbooks.client import QboClient, QboNotFound
from connectors.quickbooks.family import CustomerFamily
from connectors.quickbooks.mapping import customer_record, invoice_paid_event
from connectors.quickbooks.settings import SCOPE, QboSettings

DEFAULT_TOKEN_LIFETIME_SECONDS = 3600


class QuickBooksConnector:
    name = "quickbooks"
    version = "1.0.0"
    events = ("invoice_paid",)
    needs_oauth = True

    # --- OAuth (the token vault calls these) -------------------------------------------
    def oauth_spec(self, settings: Mapping[str, Any]) -> OAuthClientSpec:
        s = QboSettings.from_mapping(settings)
        return OAuthClientSpec(token_url=s.token_url, authorize_url=s.authorize_url,
                               client_id=s.client_id, client_secret=s.client_secret,
                               revoke_url=s.revoke_url, client_auth="client_secret_basic",
                               scope=SCOPE)

    def token_expiry(self, token_response: Mapping[str, Any], now: datetime) -> datetime:
        seconds = token_response.get("expires_in")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            seconds = DEFAULT_TOKEN_LIFETIME_SECONDS
        return now + timedelta(seconds=float(seconds))

    # --- sync ----------------------------------------------------------------------------
    def sync(self, ctx: ConnectorContext) -> Iterator[Record]:
        s = QboSettings.from_mapping(ctx.settings)
        client = self._client(ctx, s)
        marks = incremental.load_cursor(None if ctx.full else ctx.cursor)
        now = ctx.now or datetime.now(UTC)
        family = self._family(ctx, client)
        if s.use_cdc and not ctx.full and incremental.cdc_within_reach(marks, now):
            yield from self._by_cdc(ctx, client, marks, s, family)
            return
        for entity in incremental.ENTITIES:
            yield from self._by_query(ctx, client, entity, marks, s, family)

    def _family(self, ctx: ConnectorContext, client: QboClient) -> CustomerFamily:
        return CustomerFamily(lambda customer_id: self._get(ctx, client, "customer", customer_id))

    def _by_query(self, ctx: ConnectorContext, client: QboClient, entity: str,
                  marks: dict[str, incremental.Watermark], s: QboSettings,
                  family: CustomerFamily) -> Iterator[Record]:
        for page in incremental.query_pages(client, entity, marks[entity], s.page_size):
            yield from self._records(ctx, entity, page, family)
            yield Checkpoint(incremental.dump_cursor(marks))

    def _by_cdc(self, ctx: ConnectorContext, client: QboClient,
                marks: dict[str, incremental.Watermark], s: QboSettings,
                family: CustomerFamily) -> Iterator[Record]:
        """One CDC call for both entities; at the 1,000-object cap, one per entity; an
        entity alone at the cap is read by paged queries instead (never truncated)."""
        groups: list[tuple[str, ...]] = [incremental.ENTITIES]
        while groups:
            entities = groups.pop(0)
            since = min(i for e in entities if (i := marks[e].instant) is not None)
            found = incremental.cdc_changes(client, entities, since)
            if found is None and len(entities) > 1:
                ctx.log.info("quickbooks CDC at the %d-object cap; asking per entity",
                             incremental.CDC_MAX_OBJECTS)
                groups = [(e,) for e in entities] + groups
                continue
            if found is None:
                ctx.log.info("quickbooks CDC for %s at the cap; reading it by queries", entities[0])
                yield from self._by_query(ctx, client, entities[0], marks, s, family)
                continue
            for entity in entities:
                fresh = [r for r in found[entity] if marks[entity].is_new(r)]
                for row in fresh:
                    marks[entity].advance(row)
                yield from self._records(ctx, entity, fresh, family)
            yield Checkpoint(incremental.dump_cursor(marks))

    def _records(self, ctx: ConnectorContext, entity: str, rows: Sequence[Mapping[str, Any]],
                 family: CustomerFamily) -> Iterator[Record]:
        if entity == "Customer":
            yield from family.records(rows)
        elif entity == "Invoice":
            for row in rows:
                if row.get("status") == "Deleted":
                    continue
                event = invoice_paid_event(ctx.account_id, row)
                if event is not None:
                    yield event

    def _client(self, ctx: ConnectorContext, s: QboSettings) -> QboClient:
        # limits per company, shared through the database by every daemon (the sync engine
        # always offers them; a context built by hand, in tests, runs unlimited)
        limiter = (ctx.shared_limiter(s.requests_per_minute, s.max_in_flight)
                   if ctx.shared_limiter else None)
        return QboClient(ctx.http, ctx.tokens, ctx.account_id, s, limiter, ctx.log,
                         sleep=ctx.options.get("sleep") or time.sleep,
                         on_throttle_wait=ctx.on_throttle_wait)

    # --- webhooks ------------------------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], body: bytes,
                       settings: Mapping[str, Any]) -> bool:
        return webhooks.verify(headers, body, QboSettings.from_mapping(settings)
                               .webhook_verifier_token)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookNotice]:
        return webhooks.parse(body)

    def fetch(self, ctx: ConnectorContext, notices: Sequence[WebhookNotice]) -> Iterator[Record]:
        """Targeted reads of the announced entities (payments lead to their invoices)."""
        client = self._client(ctx, QboSettings.from_mapping(ctx.settings))
        family = self._family(ctx, client)
        seen_invoices: set[str] = set()
        for n in notices:
            if n.account_id and n.account_id != ctx.account_id:
                continue
            if n.entity == "Customer":
                yield from self._fetch_customer(ctx, client, n, family)
            elif n.entity == "Invoice" and n.operation in ("Create", "Update", "Emailed"):
                yield from self._fetch_invoice(ctx, client, n.entity_id, seen_invoices)
            elif n.entity == "Payment" and n.operation in ("Create", "Update"):
                payment = self._get(ctx, client, "payment", n.entity_id)
                for line in (payment or {}).get("Line") or []:
                    for txn in line.get("LinkedTxn") or []:
                        if txn.get("TxnType") == "Invoice":
                            yield from self._fetch_invoice(ctx, client, str(txn["TxnId"]),
                                                           seen_invoices)

    def _fetch_customer(self, ctx: ConnectorContext, client: QboClient,
                        n: WebhookNotice, family: CustomerFamily) -> Iterator[Record]:
        if n.operation == "Delete":
            yield customer_record({"Id": n.entity_id, "status": "Deleted"})
            return
        obj = self._get(ctx, client, "customer", n.entity_id)
        if obj is not None:
            yield from family.records([obj])
        merged = n.extra.get("deleted_id")
        if n.operation == "Merge" and merged:
            yield CustomerMerge(survivor_external_id=n.entity_id, merged_external_id=merged)

    def _fetch_invoice(self, ctx: ConnectorContext, client: QboClient, invoice_id: str,
                       seen: set[str]) -> Iterator[Record]:
        if invoice_id in seen:
            return
        seen.add(invoice_id)
        invoice = self._get(ctx, client, "invoice", invoice_id)
        event = invoice_paid_event(ctx.account_id, invoice) if invoice else None
        if event is not None:
            yield event

    def _get(self, ctx: ConnectorContext, client: QboClient, path: str,
             entity_id: str) -> dict[str, Any] | None:
        try:
            body = client.get(f"{path}/{entity_id}")
        except QboNotFound:
            ctx.log.info("quickbooks %s %s is gone; skipped", path, entity_id)
            return None
        found = next((v for k, v in body.items() if k.lower() == path), None)
        return found if isinstance(found, dict) else None
