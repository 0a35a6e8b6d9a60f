"""A business's email identity: its postal address (CAN-SPAM: every commercial email carries
one), its own From address and Reply-To. Empty values fall back to smtp.from_address and
smtp.reply_to; the From must be a mailbox on a domain the deployment may send for."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa

from blippsync.channels.email import header_value, real_address
from blippsync.database import Database
from blippsync.errors import InputError, NotFoundError

_UPDATE = sa.text("""
    UPDATE public.businesses SET
        postal_address = CASE WHEN :set_address THEN :postal_address ELSE postal_address END,
        email_from_address = CASE WHEN :set_from THEN :from_address ELSE email_from_address END,
        email_reply_to = CASE WHEN :set_reply THEN :reply_to ELSE email_reply_to END
    WHERE id = :id
    RETURNING id, name, postal_address, email_from_address, email_reply_to
""")


def set_sender_identity(db: Database, business_id: uuid.UUID, *,
                        postal_address: str | None = None, from_address: str | None = None,
                        reply_to: str | None = None) -> dict[str, Any]:
    """Change what is given ("" clears it); return the identity as it now is."""
    if from_address:
        problem = real_address(from_address)
        if problem:
            raise InputError(f"--from-address: {problem}")
    if reply_to and "@" not in reply_to:
        raise InputError(f"--reply-to: {reply_to!r} is not an email address")
    params = {"id": business_id,
              "set_address": postal_address is not None,
              "postal_address": _clean(postal_address),
              "set_from": from_address is not None, "from_address": _clean(from_address),
              "set_reply": reply_to is not None, "reply_to": _clean(reply_to)}
    with db.begin() as conn:
        row = conn.execute(_UPDATE, params).mappings().first()
    if row is None:
        raise NotFoundError(f"no business with id {business_id}")
    return dict(row)


def _clean(value: str | None) -> str | None:
    """One line (these end up in headers and footers), None for empty."""
    return header_value(value) or None if value is not None else None
