"""Seeing what was sent: `messages list` with its filters, `status` naming the channels
and counting troubled messages, and `run-once` warning when nothing really leaves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from journey_support import (
    add_event,
    apply,
    cli,
    journey_config,
    make_business,
    make_customer,
    noon_utc,
)
from journey_support import sequence as make_sequence

from blippsync.database import Database
from blippsync.errors import InputError
from blippsync.journeys import execute_due_steps, route_events
from blippsync.journeys.messages import list_messages
from blippsync.plugins import load_plugins
from blippsync.status import collect_status

NOW = noon_utc()



def test_messages_list_filters_and_status_counts(db: Database, database_url: str,
                                                 tmp_path: Path, cli_env: dict[str, str]) -> None:
    config = journey_config(tmp_path, database_url)
    business, other = make_business(db, name="Demo Plumbing"), make_business(db)
    ada = make_customer(db, business, name="Ada Lovelace", phone="+12125550101")
    bob = make_customer(db, business, name="Bob Babbage", phone="+12125550102")
    carl = make_customer(db, other, name="Carl Gauss", phone="+12125550103")
    for biz in (business, other):
        apply(db, biz, make_sequence(steps=[{"type": "sms", "purpose": "thank_you",
                                             "text": "Thanks!"}]))
    for biz, customer in ((business, ada), (business, bob), (other, carl)):
        add_event(db, biz, customer)
    route_events(db, config, now=NOW)
    assert execute_due_steps(db, config, load_plugins(), now=NOW).sent == 3
    with db.begin() as conn:  # what a carrier report would leave behind
        conn.execute(sa.text("UPDATE review_requests SET status = 'failed', error_code = '30007', "
                             "last_error = 'twilio error 30007: filtered' WHERE customer_id = :c"),
                     {"c": bob})

    def listed(**filters: object) -> list[dict]:
        return list_messages(db, **filters)  # type: ignore[arg-type]

    assert len(listed()) == 3
    mine = listed(business=str(business))
    assert {m["customer"] for m in mine} == {"Ada Lovelace", "Bob Babbage"}
    assert all(m["channel"] == "sms" and m["sent_to"].startswith("+1212") for m in mine)
    assert [m["customer"] for m in listed(customer=str(ada))] == ["Ada Lovelace"]
    assert listed(channel="email") == []
    assert len(listed(since="2025-06-10")) == 3 and listed(since="2025-06-11") == []
    assert listed(since="2d") == []  # the messages were sent in 2025
    assert len(listed(limit=2)) == 2
    with pytest.raises(InputError, match="--since: 'last tuesday' is neither a date"):
        listed(since="last tuesday")
    with pytest.raises(InputError, match="--status: 'bounced' is not one of"):
        listed(status="bounced")

    out = cli(cli_env, "messages", "list", "--json", "--business", str(business), "--status",
               "failed")
    assert out.returncode == 0, out.stderr
    (failed,) = json.loads(out.stdout)
    assert (failed["customer"], failed["error_code"]) == ("Bob Babbage", "30007")
    table = cli(cli_env, "messages", "list", "--status", "failed")
    assert "twilio error 30007" in table.stdout and "Bob Babbage" in table.stdout
    assert all(m["via"] == "outbox" for m in mine)  # and says so: nothing really left

    with db.begin() as conn:  # as the web app could write it: no validation on that path
        conn.execute(sa.text("INSERT INTO customer_sources (name) VALUES ('qbo')"))
        conn.execute(sa.text("INSERT INTO sequences (business_id, name, trigger_source, "
                             "trigger_event_type, status) VALUES (:b, 'Typo', 'qbo', "
                             "'job_complete', 'active')"), {"b": business})
    status = cli(cli_env, "status")
    assert ("WARNING: sequence 'Typo' of Demo Plumbing starts on qbo/job_complete, which no "
            "installed connector emits") in status.stdout
    assert "channels: email via outbox, sms via outbox" in status.stdout
    assert "WARNING: EMAIL and SMS go to the OUTBOX" in status.stdout
    assert "messages failed: 1" in status.stdout and "messages unknown: 0" in status.stdout
    report = collect_status(db, config)
    assert report["channels"]["active"] == {"email": "outbox", "sms": "outbox"}
    assert report["counts"]["messages failed"] == 1

    once = cli({**cli_env, "BLIPPSYNC_CHANNELS_OUTBOX_DIR": str(tmp_path / "o")}, "run-once")
    assert once.returncode == 0, once.stderr
    assert "WARNING: EMAIL and SMS go to the OUTBOX" in once.stderr and "NOT SENT" in once.stderr
