"""Targeted fetches for webhook notices: one small query per announced item.

Job, visit and invoice answers include their client whole, and the client is yielded
before the event, so an event never names a customer that is not stored yet. A payment
has no query of its own that we rely on: PAYMENT_* reads the invoices paid around the
time it happened. Deleted items come back as `null`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from typing import Any

from blippsync.connector import WebhookNotice
from blippsync.records import Record
from connectors.jobber import mapping, queries
from connectors.jobber.graphql import GraphQLClient
from connectors.jobber.webhooks import CONNECTION_ENTITY

PAYMENT_WINDOW = timedelta(minutes=15)
PAYMENT_PAGE_SIZE = 20


def fetch_notices(gql: GraphQLClient, account: str, notices: Sequence[WebhookNotice]
                  ) -> Iterator[Record]:
    seen: set[tuple[str, str]] = set()
    for notice in notices:
        key = (notice.entity, notice.entity_id)
        if notice.entity == CONNECTION_ENTITY or key in seen:
            continue
        seen.add(key)
        if notice.entity == "client":
            yield from _client(gql, notice)
        elif notice.entity == "job" and notice.operation != "destroy":
            node = gql.execute(queries.JOB, {"id": notice.entity_id}, shape="job").get("job")
            yield from _event_with_client(node, mapping.job_completed, account)
        elif notice.entity == "visit":
            visit = gql.execute(queries.VISIT, {"id": notice.entity_id}, shape="visit").get("visit")
            yield from _event_with_client((visit or {}).get("job"), mapping.job_completed, account)
        elif notice.entity == "invoice" and notice.operation != "destroy":
            node = gql.execute(queries.INVOICE, {"id": notice.entity_id},
                               shape="invoice").get("invoice")
            yield from _event_with_client(node, mapping.invoice_paid, account)
        elif notice.entity == "payment" and notice.occurred_at is not None:
            yield from _payments_around(gql, account, notice)


def _client(gql: GraphQLClient, notice: WebhookNotice) -> Iterator[Record]:
    if notice.operation == "destroy":
        yield mapping.deleted_customer(notice.entity_id)
        return
    node = gql.execute(queries.CLIENT, {"id": notice.entity_id}, shape="client").get("client")
    yield mapping.customer(node) if node else mapping.deleted_customer(notice.entity_id)


def _event_with_client(node: Any, to_event: Any, account: str) -> Iterator[Record]:
    if not node:
        return
    event = to_event(node, account)
    if event is None:
        return
    client = node.get("client")
    if client:
        yield mapping.customer(client)
    yield event


def _payments_around(gql: GraphQLClient, account: str, notice: WebhookNotice) -> Iterator[Record]:
    assert notice.occurred_at is not None
    window = {"after": (notice.occurred_at - PAYMENT_WINDOW).isoformat()}
    data = gql.execute(queries.PAID_INVOICES, {"first": PAYMENT_PAGE_SIZE, "after": None,
                                               "filter": {"status": "paid", "updatedAt": window}},
                       shape="payment")
    for node in (data.get("invoices") or {}).get("nodes") or []:
        event = mapping.invoice_paid(node, account)
        if event is not None:
            yield event
