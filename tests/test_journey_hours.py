"""Quiet hours in the business's own time zone, across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from journey_support import add_event, apply, journey_config, make_business, make_customer, rows
from journey_support import sequence as seq

from blippsync.database import Database
from blippsync.journeys import execute_due_steps, route_events
from blippsync.journeys.hours import next_allowed, parse_window
from blippsync.plugins import load_plugins

SMS = parse_window("08:00-21:00")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(("tz", "due", "expected"), [
    # New York, spring forward on 2025-03-09: 22:00 EST on the 8th -> 08:00 EDT (12:00Z)
    ("America/New_York", utc(2025, 3, 9, 3, 0), utc(2025, 3, 9, 12, 0)),
    # ... and fall back on 2025-11-02: 23:30 EDT on the 1st -> 08:00 EST (13:00Z)
    ("America/New_York", utc(2025, 11, 2, 3, 30), utc(2025, 11, 2, 13, 0)),
    # inside the window: unchanged (15:00 EDT)
    ("America/New_York", utc(2025, 7, 1, 19, 0), utc(2025, 7, 1, 19, 0)),
    # 20:59 local is allowed, 21:00 is not
    ("America/New_York", utc(2025, 7, 2, 0, 59), utc(2025, 7, 2, 0, 59)),
    ("America/New_York", utc(2025, 7, 2, 1, 0), utc(2025, 7, 2, 12, 0)),
    # London, clocks go forward 2025-03-30: 21:30 GMT on the 29th -> 08:00 BST (07:00Z)
    ("Europe/London", utc(2025, 3, 29, 21, 30), utc(2025, 3, 30, 7, 0)),
    # London early morning 06:00 GMT in January -> 08:00 GMT same day
    ("Europe/London", utc(2025, 1, 15, 6, 0), utc(2025, 1, 15, 8, 0)),
    # Sydney, DST ends 2025-04-06: 23:00 AEDT on the 5th (12:00Z) -> 08:00 AEST (22:00Z)
    ("Australia/Sydney", utc(2025, 4, 5, 12, 0), utc(2025, 4, 5, 22, 0)),
    # Sydney, DST starts 2025-10-05: 22:00 AEST on the 4th (12:00Z) -> 08:00 AEDT (21:00Z)
    ("Australia/Sydney", utc(2025, 10, 4, 12, 0), utc(2025, 10, 4, 21, 0)),
])
def test_next_allowed_minute_in_local_time(tz: str, due: datetime, expected: datetime) -> None:
    assert next_allowed(due, tz, SMS) == expected


def test_windows_parse_and_narrow() -> None:
    assert str(parse_window("9:30-17:00")) == "09:30-17:00"
    assert parse_window("00:00-24:00").always
    assert SMS.narrowed(parse_window("10:00-23:00")) == parse_window("10:00-21:00")
    for bad in ("21:00-08:00", "8-21", "08:00-25:00"):
        with pytest.raises(ValueError):
            parse_window(bad)


@pytest.mark.parametrize(("tz", "now", "expected"), [
    ("America/New_York", utc(2025, 3, 9, 3, 0), utc(2025, 3, 9, 12, 0)),
    ("Europe/London", utc(2025, 3, 29, 21, 30), utc(2025, 3, 30, 7, 0)),
    ("Australia/Sydney", utc(2025, 4, 5, 12, 0), utc(2025, 4, 5, 22, 0)),
])
def test_sms_due_at_night_waits_for_morning(tz: str, now: datetime, expected: datetime,
                                            db: Database, database_url: str,
                                            tmp_path: Path) -> None:
    business = make_business(db, timezone=tz)
    apply(db, business, seq())
    add_event(db, business, make_customer(db, business))
    config = journey_config(tmp_path, database_url)
    route_events(db, config, now=now)
    plugins = load_plugins()

    first = execute_due_steps(db, config, plugins, now=now)
    assert (first.claimed, first.sent, first.deferred) == (1, 0, 1)
    (enrollment,) = rows(db, "SELECT next_step_at, current_step FROM public.customer_enrollments")
    assert enrollment.next_step_at == expected and enrollment.current_step == 0

    second = execute_due_steps(db, config, plugins, now=expected)
    assert second.sent == 1
    (message,) = rows(db, "SELECT status, sent_at FROM public.review_requests")
    assert message.status == "sent" and message.sent_at == expected


def test_email_hours_follow_the_sequence_setting(db: Database, database_url: str,
                                                 tmp_path: Path) -> None:
    business = make_business(db, timezone="America/New_York")
    apply(db, business, seq(settings={"email_hours": "10:00-16:00"}, steps=[
        {"type": "email", "purpose": "review", "subject": "Hi", "body": "{{ review_link }}"}]))
    add_event(db, business, make_customer(db, business))
    config = journey_config(tmp_path, database_url)
    now = utc(2025, 7, 1, 13, 0)  # 09:00 EDT: allowed for SMS, too early for this sequence
    route_events(db, config, now=now)
    execute_due_steps(db, config, load_plugins(), now=now)
    (enrollment,) = rows(db, "SELECT next_step_at FROM public.customer_enrollments")
    assert enrollment.next_step_at == utc(2025, 7, 1, 14, 0)
