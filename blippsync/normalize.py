"""Normalising what connectors send: emails, phone numbers, names, tags.

Bad values are kept out of their column and reported; the customer is still stored.
Phone numbers become E.164 with `phonenumbers`; North American numbers, the bulk of
a backfill, take a fast path that applies the same NANP rules without the parse cost
(25 us a number through phonenumbers would cap an import near 40k rows/s on its own).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import phonenumbers

# Deliberately practical, not RFC 5322: one @, a dot in the domain, no spaces.
_EMAIL = re.compile(r"^[^@\s\"'<>(),;:]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+$")
_SPACES = re.compile(r"\s+")
_NANP_REGIONS = frozenset({"US", "CA", "PR", "VI", "GU", "AS", "MP"})
# (212) 555-0123, 212.555.0123, 212-555-0123, +1 212 555 0123, 1-212-555-0123, 2125550123
_NANP_PLAIN = re.compile(r"^\s*(?:\+?1[\s.-]?)?"  # optional country code
                         r"\(?([2-9]\d\d)\)?[\s.-]?([2-9]\d\d)[\s.-]?(\d{4})\s*$")


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    value: str
    reason: str


def normalize_email(raw: str | None) -> tuple[str | None, Problem | None]:
    if raw is None:
        return None, None
    email = raw.strip().strip("<>").strip().lower()
    if email.startswith("mailto:"):
        email = email[7:]
    if not email:
        return None, None
    if len(email) > 254 or not _EMAIL.match(email):
        return None, Problem("email", raw, "not a valid email address")
    return email, None


def normalize_phone(raw: str | None, region: str = "US") -> tuple[str | None, Problem | None]:
    if raw is None:
        return None, None
    text = raw.strip()
    if not text:
        return None, None
    e164 = _nanp_fast(text) if region in _NANP_REGIONS else None
    if e164 is None:
        e164 = _parse_phone(text, region)
    if e164 is None:
        return None, Problem("phone", raw, f"not a valid phone number for region {region}")
    return e164, None


def _nanp_fast(text: str) -> str | None:
    """+1 NXX NXX XXXX from a plainly written North American number, else None (and
    phonenumbers decides: extensions, vanity letters, anything unusual)."""
    match = _NANP_PLAIN.match(text)
    if match is None:
        return None
    digits = match.group(1) + match.group(2) + match.group(3)
    return "+1" + digits if _nanp_exchange_valid(digits[:6]) else None


@lru_cache(maxsize=200_000)
def _nanp_exchange_valid(npa_nxx: str) -> bool:
    """phonenumbers' own verdict, once per area code + exchange: its NANP patterns are
    decided by those six digits, and customers of one business share a few of them."""
    number = phonenumbers.PhoneNumber(country_code=1, national_number=int(npa_nxx + "4567"))
    return phonenumbers.is_valid_number(number)


@lru_cache(maxsize=4096)
def _parse_phone(text: str, region: str) -> str | None:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_name(raw: str | None) -> str | None:
    if raw is None:
        return None
    name = _SPACES.sub(" ", raw).strip()
    return name or None


def normalize_tags(raw: tuple[str, ...] | list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for tag in raw:
        clean = _SPACES.sub(" ", tag).strip()
        if clean:
            seen.setdefault(clean, None)
    return list(seen)


def storable(value: Any) -> Any:
    """What PostgreSQL can store of a value from outside (a webhook, an SMS): text without
    NUL (text and jsonb refuse it), numbers that are finite (jsonb has no NaN/Infinity:
    they become null), recursively. An authentic delivery is stored cleaned rather than
    refused forever."""
    if isinstance(value, str):
        return value.replace("\x00", "")
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {storable(str(k)): storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [storable(v) for v in value]
    return value
