"""Quiet hours in the recipient's zone (from the customer's recorded zone, else the phone
number), combined with the business's: a message waits until both are open. Expected
instants are worked out by hand from the zones' UTC offsets on 10 June 2025 (summer:
New York UTC-4, Los Angeles UTC-7, Honolulu UTC-10, London UTC+1, Sydney UTC+10)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from journey_support import add_event, apply, journey_config, make_business, make_customer, sequence

from blippsync.database import Database
from blippsync.journeys import execute_due_steps, route_events
from blippsync.journeys.explain import explain_customer, story_lines
from blippsync.journeys.hours import parse_window
from blippsync.journeys.recipient_zone import next_allowed_everywhere, recipient_zones
from blippsync.plugins import load_plugins

SMS_HOURS = parse_window("08:00-21:00")


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 6, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(("business", "phone", "now", "expected", "held_by"), [
    # 09:00 in New York is 03:00 in Honolulu: wait for 08:00 HST = 18:00 UTC
    ("America/New_York", "+18085550123", at(10, 13), at(10, 18), "Pacific/Honolulu"),
    # 09:00 in New York is 06:00 in San Francisco: wait for 08:00 PDT = 15:00 UTC
    ("America/New_York", "+14155550123", at(10, 13), at(10, 15), "America/Los_Angeles"),
    # a New York number of a New York business: nothing to wait for
    ("America/New_York", "+12125550123", at(10, 13), at(10, 13), None),
    # 17:30 in New York is 22:30 in London: London opens 07:00 UTC, New York only 12:00 UTC
    ("America/New_York", "+442079460000", at(10, 21, 30), at(11, 12), "America/New_York"),
    # 09:00 in New York is 23:00 in Sydney: Sydney opens 22:00 UTC (18:00 in New York)
    ("America/New_York", "+61291234567", at(10, 13), at(10, 22), "Australia/Sydney"),
    # a Honolulu business texting New York at 21:30 New York time: New York opens 12:00
    # UTC (02:00 in Honolulu), Honolulu only at 18:00 UTC
    ("Pacific/Honolulu", "+12125550123", at(11, 1, 30), at(11, 18), "Pacific/Honolulu"),
    # a toll-free number spans every US zone: it says nothing, the business's zone decides
    ("America/New_York", "+18005550123", at(10, 13), at(10, 13), None),
])
def test_the_most_restrictive_window_of_business_and_recipient(
        business: str, phone: str, now: datetime, expected: datetime,
        held_by: str | None) -> None:
    zones = recipient_zones(business, None, phone)
    assert next_allowed_everywhere(now, zones, SMS_HOURS) == (expected, held_by)


def test_the_customers_recorded_zone_wins_over_the_phone_number() -> None:
    zones = recipient_zones("America/New_York", "America/Los_Angeles", "+12125550123")
    assert zones.recipient == ("America/Los_Angeles",)
    assert "customer's time zone" in zones.describe()
    assert next_allowed_everywhere(at(10, 13), zones, SMS_HOURS) == (at(10, 15),
                                                                     "America/Los_Angeles")
    assert recipient_zones("America/New_York", "Not/A_Zone", "+18085550123").recipient == (
        "Pacific/Honolulu",)


def test_windows_that_never_overlap_follow_the_recipient() -> None:
    # 08:00-09:00 in New York (12-13 UTC) and in Sydney (22-23 UTC) never meet: the law
    # counts the recipient's local time, so Sydney's window is used
    zones = recipient_zones("America/New_York", None, "+61291234567")
    when, held_by = next_allowed_everywhere(at(10, 13), zones, parse_window("08:00-09:00"))
    assert (when, held_by) == (at(10, 22), "Australia/Sydney")


def test_a_hawaii_customer_of_a_new_york_business_is_texted_at_8_hawaii_time(
        db: Database, database_url: str, tmp_path: Path) -> None:
    config = journey_config(tmp_path, database_url)
    business = make_business(db, timezone="America/New_York")
    customer = make_customer(db, business, phone="+18085550123")
    apply(db, business, sequence(steps=[{"type": "sms", "purpose": "thank_you",
                                         "text": "Thanks!"}]))
    add_event(db, business, customer)
    route_events(db, config, now=at(10, 13))
    plugins = load_plugins()
    held = execute_due_steps(db, config, plugins, now=at(10, 13))
    assert (held.sent, held.deferred) == (0, 1)
    story = "\n".join(story_lines(explain_customer(db, str(customer))))
    assert "quiet hours count in America/New_York, Pacific/Honolulu" in story
    assert ("sms held until 2025-06-10 18:00 UTC: quiet hours (allowed 08:00-21:00) in the "
            "recipient's zone Pacific/Honolulu") in story
    assert execute_due_steps(db, config, plugins,
                             now=at(10, 18) - timedelta(minutes=1)).claimed == 0
    assert execute_due_steps(db, config, plugins, now=at(10, 18)).sent == 1

