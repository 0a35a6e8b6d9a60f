"""Unsubscribing from email over real HTTP: the link of a real sent email, its GET page
(changes nothing), RFC 8058 one-click POST, a real browser pressing the button, and no
email to that customer afterwards (SMS unaffected)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from http_support import serving
from journey_support import (
    add_event,
    apply,
    journey_config,
    make_business,
    make_customer,
    noon_utc,
    rows,
    sequence,
)

from blippsync.config import Config
from blippsync.database import Database
from blippsync.journeys import execute_due_steps, route_events
from blippsync.journeys.explain import explain_customer, story_lines
from blippsync.plugins import load_plugins

PUBLIC = "https://sync.plumbing.example"
NOW = noon_utc()
STEPS = [
    {"type": "email", "purpose": "thank_you", "subject": "Thanks", "body": "Thanks!"},
    {"type": "sms", "delay_minutes": 60, "purpose": "follow_up", "text": "How was it?"},
    {"type": "email", "delay_minutes": 60, "purpose": "review", "subject": "Review us",
     "body": "Please: {{ review_link }}"},
]


@pytest.fixture
def config(tmp_path: Path, database_url: str) -> Config:
    return journey_config(tmp_path, database_url, http__public_base_url=PUBLIC,
                          journeys__review_link_base_url=PUBLIC)


@pytest.fixture
def server(config: Config, db: Database) -> Iterator[str]:
    with serving(config, db) as url:
        yield url


def _outbox(config: Config, business: uuid.UUID) -> list[Path]:
    return sorted((config.resolve_path("channels.outbox_dir") / str(business)).glob("*"))


def _first_email(db: Database, config: Config) -> tuple[uuid.UUID, uuid.UUID, str]:
    """A customer enrolled in STEPS with the first email sent; (business, customer, the
    loopback form of its List-Unsubscribe URL)."""
    business = make_business(db, name="Demo Plumbing")
    customer = make_customer(db, business, name="Ada Lovelace", email="ada@example.com",
                             phone="+12125550147")
    apply(db, business, sequence(steps=STEPS))
    add_event(db, business, customer)
    route_events(db, config, now=NOW)
    assert execute_due_steps(db, config, load_plugins(), now=NOW).sent == 1
    (eml,) = _outbox(config, business)
    msg = message_from_bytes(eml.read_bytes(), policy=policy.default)
    link = str(msg["List-Unsubscribe"]).split(",")[0].strip().strip("<>")
    assert link.startswith(f"{PUBLIC}/u/")
    return business, customer, link.removeprefix(PUBLIC)


def _opted_out(db: Database, customer: uuid.UUID) -> bool:
    return bool(rows(db, "SELECT email_opted_out FROM customers WHERE id = :id",
                     id=customer)[0][0])


def _finish(db: Database, config: Config) -> Any:
    later = NOW + timedelta(hours=1)
    first = execute_due_steps(db, config, load_plugins(), now=later)  # the SMS
    second = execute_due_steps(db, config, load_plugins(), now=later + timedelta(hours=1))
    return first, second


def test_one_click_post_unsubscribes_and_no_email_follows(db: Database, config: Config,
                                                          server: str) -> None:
    business, customer, path = _first_email(db, config)
    page = httpx.get(server + path)
    assert page.status_code == 200 and "Unsubscribe" in page.text and 'method="post"' in page.text
    assert "a***@example.com" in page.text and "ada@example.com" not in page.text
    assert not _opted_out(db, customer)  # a GET (link scanners) changes nothing

    done = httpx.post(server + path, content=b"List-Unsubscribe=One-Click",
                      headers={"content-type": "application/x-www-form-urlencoded"})
    assert done.status_code == 200 and "unsubscribed" in done.text
    assert _opted_out(db, customer)
    assert httpx.post(server + path, content=b"List-Unsubscribe=One-Click").status_code == 200

    sms, email = _finish(db, config)
    assert (sms.sent, email.sent, email.completed) == (1, 0, 1)  # SMS still goes, email not
    kinds = sorted(p.suffixes[-1] for p in _outbox(config, business))
    assert kinds == [".eml", ".txt"]
    story = "\n".join(story_lines(explain_customer(db, str(customer))))
    assert "unsubscribed from email" in story
    assert "step 3: skipped (customer unsubscribed from email)" in story

    # a new event: an email-only sequence no longer enrolls the customer, and says why
    apply(db, business, sequence("Email only", trigger_event_type="invoice_paid",
                                 steps=[STEPS[0]]))
    add_event(db, business, customer, event_type="invoice_paid")
    assert route_events(db, config, now=NOW + timedelta(days=1)).skipped == {
        "email_opted_out": 1}


def test_forged_or_altered_tokens_are_refused(db: Database, config: Config,
                                              server: str) -> None:
    _business, customer, path = _first_email(db, config)
    token = path.removeprefix("/u/")
    altered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    other_message = uuid.uuid4().bytes.hex()
    for bad in (altered, other_message, "x" * 43, "short"):
        assert httpx.get(f"{server}/u/{bad}").status_code == 404
        assert httpx.post(f"{server}/u/{bad}", content=b"List-Unsubscribe=One-Click"
                          ).status_code == 404
    assert not _opted_out(db, customer)


def test_a_browser_unsubscribes_with_the_button(db: Database, config: Config, server: str,
                                                browser: Any, screenshot: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.wait import WebDriverWait

    _business, customer, path = _first_email(db, config)
    browser.get(server + path)
    assert browser.title == "Unsubscribe from Demo Plumbing"
    screenshot("unsubscribe-confirm")
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(browser, 10).until(lambda b: b.title == "You are unsubscribed")
    assert browser.find_element(By.TAG_NAME, "h1").text == "You are unsubscribed"
    screenshot("unsubscribe-done")
    assert _opted_out(db, customer)
    browser.get(server + path)  # coming back later says so
    assert "already sends no email" in browser.find_element(By.TAG_NAME, "body").text
