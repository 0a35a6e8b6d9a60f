"""Jobber clients as they really are, through the loopback fake and the sync engine:
several emails and phones (the one described Mobile takes the texts), and two clients
sharing one email address."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from fakes.jobber_fake import (
    ACCOUNT_ID,
    BASE_TIME,
    FakeTokens,
    JobberFake,
    make_client,
    make_ctx,
    make_job,
)

from blippsync.businesses import add_business
from blippsync.connections import ensure_connection
from blippsync.database import Database
from blippsync.records import CustomerRecord
from blippsync.sync import SyncOptions, sync_connection
from connectors.jobber import JobberConnector

NOW = BASE_TIME + timedelta(days=2)


def _client(n: int, name: str, emails: list[dict[str, Any]],
            phones: list[dict[str, Any]]) -> dict[str, Any]:
    node = make_client(n)
    node.update(name=name, emails=emails, phones=phones)
    return node


def _sync(db: Database, config: Any, fake: JobberFake) -> Any:
    business = add_business(db, name="Navy Yard Cleaning", owner_email="owner@navy.example",
                            timezone="America/New_York")
    with db.begin() as conn:
        connection = ensure_connection(conn, business, "jobber", ACCOUNT_ID, fake.settings())
    with httpx.Client() as http:
        summary = sync_connection(db, config, connection, JobberConnector(),
                                  SyncOptions(now=NOW), http=http, tokens=FakeTokens(fake))
    assert summary.error is None, summary.error
    return summary


def _rows(db: Database, sql: str) -> list[Any]:
    with db.connect() as conn:
        return conn.execute(sa.text(sql)).all()


GRACE = _client(1, "Grace Hopper",
                emails=[{"address": "billing@navy.example", "primary": False},
                        {"address": "grace@navy.example", "primary": True}],
                phones=[{"number": "(202) 555-0140", "primary": True, "smsAllowed": True,
                         "description": "Main"},
                        {"number": "(202) 555-0141", "primary": False, "smsAllowed": True,
                         "description": "Mobile"},
                        {"number": "(202) 555-0142", "primary": False, "smsAllowed": False,
                         "description": "Work"}])


def test_every_email_and_phone_of_a_client_is_kept_and_the_mobile_is_known(
        db: Database, config: Any) -> None:
    with JobberFake(clients=[GRACE]) as fake, httpx.Client() as http:
        (record,) = [r for r in JobberConnector().sync(make_ctx(fake, http, now=NOW))
                     if isinstance(r, CustomerRecord)]
        assert (record.email, record.emails) == ("grace@navy.example", ("billing@navy.example",))
        assert (record.phone, record.mobile, record.phones) == (
            "(202) 555-0140", "(202) 555-0141", ("(202) 555-0142",))
        assert record.sms_allowed is True  # the mobile's flag: that is the number texted
        _sync(db, config, fake)
    (c,) = _rows(db, "SELECT email, other_emails, phone, mobile_phone, phones FROM customers")
    assert (c.email, c.other_emails) == ("grace@navy.example", ["billing@navy.example"])
    assert (c.phone, c.mobile_phone) == ("+12025550140", "+12025550141")
    assert [p["kind"] for p in c.phones] == ["primary", "mobile", "other"]


def test_two_clients_sharing_an_email_reach_one_customer_and_both_jobs_reach_it(
        db: Database, config: Any) -> None:
    office = [{"address": "office@harbor.example", "primary": True}]
    first = _client(11, "Harbor Props - 12 Oak", office,
                    [{"number": "(202) 555-0111", "primary": True, "smsAllowed": True,
                      "description": "Main"}])
    second = _client(12, "Harbor Props - 40 Elm", office,
                     [{"number": "(202) 555-0112", "primary": True, "smsAllowed": True,
                       "description": "Mobile"}])
    jobs = [make_job(501, {"id": first["id"]}, NOW - timedelta(hours=2)),
            make_job(502, {"id": second["id"]}, NOW - timedelta(hours=1))]
    with JobberFake(clients=[first, second], jobs=jobs) as fake:
        summary = _sync(db, config, fake)
    assert (summary.counts.created, summary.counts.joined) == (1, 1)
    (c,) = _rows(db, "SELECT id, name, email, phone, mobile_phone FROM customers")
    assert (c.name, c.email, c.phone) == ("Harbor Props - 12 Oak", "office@harbor.example",
                                          "+12025550111")
    assert c.mobile_phone == "+12025550112"  # what the second client adds, nothing replaced
    events = _rows(db, "SELECT customer_id, payload FROM trigger_events ORDER BY occurred_at")
    assert [e.customer_id for e in events] == [c.id, c.id]
    assert events[1].payload["account"] == {"external_id": second["id"],
                                            "name": "Harbor Props - 40 Elm"}
    (merge,) = _rows(db, "SELECT kind, external_id, customer_id FROM identity_conflicts")
    assert (merge.kind, merge.external_id, merge.customer_id) == ("merged", second["id"], c.id)
