"""Where the recipient is: the time zones quiet hours are counted in.

TCPA and the state rules count the recipient's local time, not the business's. The
customer's own zone wins when the source (or the web app) recorded one; otherwise the
phone number says it (phonenumbers' time-zone lookup: area code for +1 numbers, country
elsewhere). A number that maps to more than MAX_PHONE_ZONES zones (US toll-free, a
country spanning many zones) says nothing useful and is ignored. The business's zone
always counts too: a step waits until its window is open in every zone that applies.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

import phonenumbers
from phonenumbers import timezone as phone_timezone

from blippsync.journeys.hours import Window, next_allowed

MAX_PHONE_ZONES = 3
MAX_ROUNDS = 16


@dataclass(frozen=True, slots=True)
class Zones:
    """The zones a message's window must be open in, and where the recipient's came from."""

    business: str
    recipient: tuple[str, ...] = ()
    source: str = ""  # "customer's time zone" | "phone number +1 808..." | ""

    @property
    def all(self) -> tuple[str, ...]:
        return (self.business, *(z for z in self.recipient if z != self.business))

    def describe(self) -> str:
        if not self.recipient:
            return f"business zone {self.business} (recipient's zone unknown)"
        return f"recipient zone {', '.join(self.recipient)} (from the {self.source})"


def recipient_zones(business_tz: str, customer_tz: str | None, phone: str | None) -> Zones:
    if customer_tz and _valid_zone(customer_tz):
        return Zones(business_tz, (customer_tz,), "customer's time zone")
    found = zones_of_phone(phone) if phone else ()
    if found:
        return Zones(business_tz, found, f"phone number {phone}")
    return Zones(business_tz)


@lru_cache(maxsize=65536)
def zones_of_phone(phone: str) -> tuple[str, ...]:
    """The zones an E.164 number belongs to; () when unknown or too many to mean anything."""
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return ()
    found = tuple(z for z in phone_timezone.time_zones_for_number(number)
                  if z != "Etc/Unknown" and _valid_zone(z))
    return found if len(found) <= MAX_PHONE_ZONES else ()


@lru_cache(maxsize=1024)
def _valid_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def next_allowed_everywhere(at: datetime, zones: Zones,
                            window: Window) -> tuple[datetime, str | None]:
    """The first instant at or after `at` inside the window in every zone (the most
    restrictive reading), and the zone that held it back last (None: not held).

    Moving to the next opening of whichever zone is closed never skips a common instant,
    so the first fixed point is the earliest one. Windows that never overlap (possible for
    narrow windows far apart) fall back to the recipient's zone alone: their local time is
    the one the law counts."""
    when, held_by = at, None
    for _ in range(MAX_ROUNDS):
        moved = False
        for name in zones.all:
            nxt = next_allowed(when, name, window)
            if nxt > when:
                when, held_by, moved = nxt, name, True
        if not moved:
            return when, held_by
    own = zones.recipient[0] if zones.recipient else zones.business
    when = next_allowed(at, own, window)
    return when, (own if when > at else None)
