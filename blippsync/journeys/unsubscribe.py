"""Email unsubscribe: a signed link per message, and the opt-out it records.

The token is the message's ledger id (review_requests.id) followed by an HMAC-SHA256 of
it under a key made once per database (blippsync.signing_keys), base64url: unguessable,
unforgeable without the key, and no lookup table. Unsubscribing sets the customer's
`email_opted_out`; routing and execution then send them no email (SMS is not affected,
and SMS STOP keeps its own opt-out).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from blippsync.database import Database

MAC_BYTES = 16
_KEY = sa.text("SELECT secret FROM blippsync.signing_keys WHERE purpose = 'unsubscribe'")
_TARGET = sa.text("""
    SELECT r.id, r.customer_id, c.email, c.email_opted_out, b.name AS business
    FROM public.review_requests r
    JOIN public.customers c ON c.id = r.customer_id
    JOIN public.businesses b ON b.id = r.business_id
    WHERE r.id = :id
""")
_OPT_OUT = sa.text("""
    UPDATE public.customers SET email_opted_out = true,
           email_opted_out_at = coalesce(email_opted_out_at, :now)
    WHERE id = :customer_id
""")


@dataclass(frozen=True, slots=True)
class Recipient:
    """Whom an unsubscribe token speaks for (enough for the confirmation page)."""

    ledger_id: uuid.UUID
    customer_id: uuid.UUID
    email: str | None
    business: str
    opted_out: bool

    @property
    def masked_email(self) -> str:
        local, _, domain = (self.email or "").partition("@")
        return f"{local[:1]}***@{domain}" if domain else "your address"


def signing_key(conn: sa.Connection) -> bytes:
    secret = conn.execute(_KEY).scalar_one_or_none()
    if secret is None:
        raise RuntimeError("blippsync.signing_keys has no 'unsubscribe' key (migration 0140)")
    return bytes.fromhex(secret)


def make_token(key: bytes, ledger_id: uuid.UUID) -> str:
    raw = ledger_id.bytes + _mac(key, ledger_id.bytes)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def read_token(key: bytes, token: str) -> uuid.UUID | None:
    """The ledger id a genuine token names; None for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 16 + MAC_BYTES or not hmac.compare_digest(raw[16:], _mac(key, raw[:16])):
        return None
    return uuid.UUID(bytes=raw[:16])


def _mac(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, b"unsubscribe:" + data, hashlib.sha256).digest()[:MAC_BYTES]


def find_recipient(db: Database, token: str) -> Recipient | None:
    with db.connect() as conn:
        ledger_id = read_token(signing_key(conn), token)
        row = conn.execute(_TARGET, {"id": ledger_id}).first() if ledger_id else None
    if row is None:
        return None
    return Recipient(ledger_id=row.id, customer_id=row.customer_id, email=row.email,
                     business=row.business, opted_out=row.email_opted_out)


def unsubscribe(db: Database, token: str, *, now: datetime | None = None) -> Recipient | None:
    """Opt the token's customer out of email (idempotent); None for an invalid token."""
    recipient = find_recipient(db, token)
    if recipient is not None:
        with db.begin() as conn:
            conn.execute(_OPT_OUT, {"customer_id": recipient.customer_id,
                                    "now": now or datetime.now(UTC)})
    return recipient
