"""A template can fail only its own step: rendered outside the claim transaction on a time
and size budget, with the reason `explain` shows; refused when written through blippsync,
re-checked when claimed (the web app writes sequence_steps directly), and shaped by a
database CHECK for every writer."""

from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
from journey_support import apply, journey_config, make_business, noon_utc, rows, seed_due, sequence

from blippsync.database import Database
from blippsync.errors import InputError
from blippsync.journeys import execute_due_steps
from blippsync.journeys.definitions import parse_sequence
from blippsync.journeys.explain import explain_customer, story_lines
from blippsync.plugins import load_plugins

NOW = noon_utc()
# only known variables: both pass the name checks, as the templates did
NESTED_LOOPS = ("{% for a in customer.name * 3000 %}{% for b in customer.name * 3000 %}"
                "{% endfor %}{% endfor %}Thanks {{ customer.first_name }}!")
HUGE = "{% for a in customer.name * 3000 %}{{ customer.name * 3000 }}{% endfor %}"  # ~GBs
EMAIL = [{"type": "email", "delay_minutes": 0, "purpose": "thank_you",
          "subject": "Thanks {{ customer.first_name }}", "body": "Thank you!"}]


@pytest.mark.parametrize("body, why", [(NESTED_LOOPS, "it takes more than 2s"),
                                       (HUGE, "it writes more than 100,000 characters")])
def test_an_expensive_template_is_refused_when_written(body: str, why: str) -> None:
    spec = sequence(steps=[{**EMAIL[0], "body": body}])
    with pytest.raises(InputError, match=f"body: template is too expensive to render: {why}"):
        parse_sequence(spec, "journeys.toml: sequences[0]")


def _poison(db: Database, sequence_id: object, body: str) -> None:
    """What the web app can do: write message_config directly, past our validation."""
    with db.begin() as conn:
        conn.execute(sa.text("UPDATE sequence_steps SET message_config = jsonb_build_object("
                             "'subject', 'Hi', 'body', CAST(:body AS text)) "
                             "WHERE sequence_id = :s"), {"body": body, "s": sequence_id})


@pytest.mark.parametrize("body, why", [(NESTED_LOOPS, "it takes more than 0.5s"),
                                       (HUGE, "it writes more than 100,000 characters")])
def test_a_poisoned_template_fails_its_step_and_every_other_tenant_is_served(
        tmp_path: Path, database_url: str, db: Database, body: str, why: str) -> None:
    config = journey_config(tmp_path, database_url, journeys__render_timeout_seconds=0.5)
    poisoned, healthy = make_business(db), make_business(db)
    (bad,) = apply(db, poisoned, sequence(steps=EMAIL))
    (good,) = apply(db, healthy, sequence(steps=EMAIL))
    _poison(db, bad, body)
    seed_due(db, poisoned, bad, 3, NOW)
    seed_due(db, healthy, good, 3, NOW)
    started = time.monotonic()
    summary = execute_due_steps(db, config, load_plugins(), now=NOW)
    assert time.monotonic() - started < 5  # one budget, once: the config is checked once
    assert (summary.sent, summary.failed) == (3, 3)
    ledger = rows(db, "SELECT business_id, status, last_error FROM review_requests")
    assert {r.status for r in ledger if r.business_id == healthy} == {"sent"}
    failed = [r for r in ledger if r.business_id == poisoned]
    assert {r.status for r in failed} == {"failed"}
    assert {r.last_error for r in failed} == {
        f"step 1 template: body: template is too expensive to render: {why}"}
    customer = rows(db, "SELECT id FROM customers WHERE business_id = :b LIMIT 1", b=poisoned)[0]
    story = "\n".join(story_lines(explain_customer(db, str(customer.id))))
    assert f"template is too expensive to render: {why}" in story
    assert len(json.dumps([r.last_error for r in failed])) < 2000  # nothing huge was stored


def test_the_database_keeps_message_config_shaped_for_every_writer(
        database_url: str, db: Database) -> None:
    business = make_business(db)
    (seq,) = apply(db, business, sequence(steps=EMAIL))
    for bad in ('"just a string"', '{"body": 5}', '{"subject": ["a"]}',
                json.dumps({"body": "x" * 100_001})):
        with psycopg.connect(database_url) as conn, pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE sequence_steps SET message_config = %s::jsonb "
                         "WHERE sequence_id = %s", (bad, seq))
    with psycopg.connect(database_url) as conn:  # the web app's own keys stay allowed
        conn.execute("UPDATE sequence_steps SET message_config = message_config || "
                     "'{\"editor_state\": {\"v\": 2}}'::jsonb WHERE sequence_id = %s", (seq,))
