"""The manual connector: customers and trigger events entered by hand (`customers add`).

It produces records from the options it is given, through the same engine as every
other connector, so a hand-entered customer is normalised, deduplicated and can start
a journey exactly like a synced one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime

from blippsync.connector import ConnectorContext
from blippsync.errors import InputError
from blippsync.hookspecs import hookimpl
from blippsync.normalize import normalize_email, normalize_name, normalize_phone
from blippsync.records import Checkpoint, CustomerRecord, EventRecord, Record

VERSION = "1.0.0"


def derive_external_id(name: str | None, email: str | None, phone: str | None,
                       country: str = "US") -> str:
    """Stable id for a hand-entered customer: the same person entered twice is one row."""
    clean_email, _ = normalize_email(email)
    clean_phone, _ = normalize_phone(phone, country)
    basis = (f"email:{clean_email}" if clean_email else f"phone:{clean_phone}" if clean_phone
             else f"name:{(normalize_name(name) or '').lower()}")
    return "manual:" + hashlib.sha1(basis.encode()).hexdigest()[:20]


class ManualConnector:
    name = "manual"
    version = VERSION
    events = ("job_completed", "invoice_paid", "customer_created")
    needs_oauth = False

    def sync(self, ctx: ConnectorContext) -> Iterator[Record]:
        """Yield the customer in ctx.options["customer"] and, with options["event"], its trigger."""
        customer = ctx.options.get("customer")
        if customer is None:
            yield Checkpoint({})
            return
        if not any((customer.get(k) or "").strip() for k in ("name", "email", "phone")):
            raise InputError("a customer needs at least a name, an email or a phone number")
        country = str(ctx.settings.get("country", "US"))
        external_id = customer.get("external_id") or derive_external_id(
            customer.get("name"), customer.get("email"), customer.get("phone"), country)
        yield CustomerRecord(external_id=external_id, name=customer.get("name"),
                             email=customer.get("email"), phone=customer.get("phone"),
                             address=customer.get("address"),
                             tags=tuple(customer.get("tags", ())), location="command line")
        event_type = ctx.options.get("event")
        if event_type:
            occurred = ctx.options.get("occurred_at") or ctx.now or datetime.now(UTC)
            yield EventRecord(
                event_type=event_type, customer_external_id=external_id, occurred_at=occurred,
                dedupe_key=f"manual:{external_id}:{event_type}:{occurred.isoformat(timespec='seconds')}",
                payload={"entered_by": "blippsync customers add"}, location="command line")
        yield Checkpoint({})


@hookimpl
def register_connectors(register):  # type: ignore[no-untyped-def]
    register(ManualConnector())
