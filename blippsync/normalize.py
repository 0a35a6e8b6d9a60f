"""Normalising what connectors send: emails, phone numbers, names, tags.

Bad values are kept out of their column and reported; the customer is still stored.
A source cell may hold several values ("a@x.com, b@y.com", "Phone: (617) 555-0142 Mobile:
(617) 555-0143", "Mary Smith <mary@example.com>"): `split_emails` and `split_phones` find
each one, so no contact is lost because it shared a field with another.

Emails are checked with email-validator (syntax only, never DNS); a plain ASCII address,
the bulk of any import, takes a fast path whose pattern only accepts what the validator
accepts. Phone numbers become E.164 with `phonenumbers`; North American numbers take a
fast path that applies the same NANP rules without the parse cost (25 us a number through
phonenumbers would cap an import near 40k rows/s on its own).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email

# A subset of what email-validator accepts: dot-atoms of common characters, a domain of
# LDH labels and an alphabetic top-level label. Anything else goes to the validator.
_EMAIL_FAST = re.compile(r"^[a-z0-9_%+'-]+(?:\.[a-z0-9_%+'-]+)*"
                         r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
# reserved names email-validator refuses; "test" is accepted (sample data, demos)
_RESERVED_TLDS = frozenset({"arpa", "invalid", "local", "localhost", "onion"})
_EMAIL_CANDIDATE = re.compile(r"[^\s<>,;\"()\[\]]*@[^\s<>,;\"()\[\]]*")
_SPACES = re.compile(r"\s+")
_NANP_REGIONS = frozenset({"US", "CA", "PR", "VI", "GU", "AS", "MP"})
# (212) 555-0123, 212.555.0123, 212-555-0123, +1 212 555 0123, 1-212-555-0123, 2125550123
_NANP_PLAIN = re.compile(r"^\s*(?:\+?1[\s.-]?)?"  # optional country code
                         r"\(?([2-9]\d\d)\)?[\s.-]?([2-9]\d\d)[\s.-]?(\d{4})\s*$")
# Excel shows long numbers in scientific notation and, saved as CSV, keeps only that text
_EXCEL_SCIENTIFIC = re.compile(r"^\s*\d(?:[.,]\d+)?E\+?\d+\s*$", re.IGNORECASE)
# one number, optionally labelled ("Mobile: ...") and with an extension ("x12", "ext. 12")
_PHONE_ITEM = re.compile(
    r"(?:(?P<label>[^\W\d_][^\W\d_ .]*(?:[ .][^\W\d_]+)*)\.?\s*:?\s*)?"
    r"(?P<number>\+?\(?\d[\d\s()./-]*\d(?:\s*(?:ext\.?|x|#)\s*\d+)?|\d)", re.IGNORECASE)
_ONE_PHONE = re.compile(r"^(?!.*\s/\s)[\d\s()./+-]+$")  # no letters, labels or separators
_ONE_EMAIL = re.compile(r"^[^\s,;<>:@]+@[^\s,;<>:@]+$")
_PHONE_SEPARATORS = re.compile(r":::|[,;\n\r|]|\s/\s")  # ":::" is Google's
_MOBILE_WORDS = ("mobile", "mobil", "cell", "portable", "handy", "movil", "móvil", "celular",
                 "sms", "text")
MOBILE, PRIMARY, OTHER = "mobile", "primary", "other"


@dataclass(frozen=True, slots=True)
class Problem:
    field: str
    value: str
    reason: str


def normalize_email(raw: str | None) -> tuple[str | None, Problem | None]:
    """One address, lower-cased; None and a Problem when it is not a valid address."""
    if raw is None:
        return None, None
    email = raw.strip().strip("<>").strip().lower()
    if email.startswith("mailto:"):
        email = email[7:]
    if not email:
        return None, None
    if len(email) <= 254 and _EMAIL_FAST.match(email) and \
            email.rpartition(".")[2] not in _RESERVED_TLDS:
        return email, None
    return _validated(email, raw)


def _validated(email: str, raw: str) -> tuple[str | None, Problem | None]:
    try:
        checked = validate_email(email, check_deliverability=False, test_environment=True)
    except EmailNotValidError as exc:
        return None, Problem("email", raw, f"not a valid email address ({exc})")
    return checked.normalized.lower(), None


def split_emails(raw: str | None) -> tuple[list[str], list[Problem]]:
    """Every address in a cell: lists separated by commas, semicolons or new lines,
    `Name <addr>`, `mailto:` links. A cell with text but no usable address is a Problem."""
    if raw is None or not (text := raw.strip()):
        return [], []
    if _ONE_EMAIL.match(text):
        email, problem = normalize_email(text)  # the common case: one plain address
        return ([email] if email else []), ([problem] if problem else [])
    found: list[str] = []
    problems: list[Problem] = []
    for candidate in _EMAIL_CANDIDATE.findall(text):
        local, _, domain = candidate.rpartition("@")
        candidate = f"{local.rpartition(':')[2]}@{domain}"  # "Email:a@x.com", "mailto:..."
        email, problem = normalize_email(candidate)
        if email and email not in found:
            found.append(email)
        elif problem:
            problems.append(Problem("email", raw, problem.reason))
    if not found and not problems:
        problems.append(Problem("email", raw, "not a valid email address (no @)"))
    return found, problems


def normalize_phone(raw: str | None, region: str = "US") -> tuple[str | None, Problem | None]:
    if raw is None:
        return None, None
    text = raw.strip()
    if not text:
        return None, None
    if _EXCEL_SCIENTIFIC.match(text):
        return None, Problem("phone", raw, "Excel turned this number into scientific "
                             "notation and its digits are lost; format the column as Text "
                             "in Excel and export again")
    e164 = _nanp_fast(text) if region in _NANP_REGIONS else None
    if e164 is None:
        e164 = _parse_phone(text, region)
    if e164 is None:
        return None, Problem("phone", raw, f"not a valid phone number for region {region}")
    return e164, None


def split_phones(raw: str | None, kind: str = PRIMARY
                 ) -> list[tuple[str, str]]:
    """(number text, kind) for each number in a cell: lists separated by commas,
    semicolons, new lines or " / ", and labels ("Phone: ... Mobile: ..."). A number
    labelled mobile/cell is MOBILE; the first unlabelled one has `kind`, later ones OTHER.
    The texts are not validated here (normalize_phone does that)."""
    if raw is None or not (text := raw.strip()):
        return []
    if _ONE_PHONE.match(text):
        return [(text, kind)]  # the common case: one plain number
    if _EXCEL_SCIENTIFIC.match(text):
        return [(text, kind)]
    found: list[tuple[str, str]] = []
    for part in _PHONE_SEPARATORS.split(text):
        for match in _PHONE_ITEM.finditer(part):
            label = (match.group("label") or "").casefold()
            if label.startswith(("ext", "x")) and found:
                continue
            if any(word in label for word in _MOBILE_WORDS):
                found.append((match.group("number").strip(), MOBILE))
            elif label.startswith("fax"):
                found.append((match.group("number").strip(), "fax"))
            else:
                # a cell the source calls mobile holds mobiles; elsewhere the first is main
                first = kind if kind == MOBILE or not any(k == kind for _, k in found) \
                    else OTHER
                found.append((match.group("number").strip(), first))
    return found or [(text, kind)]


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
