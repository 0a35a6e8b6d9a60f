"""Billing status end to end: signed Stripe deliveries on POST /webhooks/stripe (a real
uvicorn), the daemon's worker turning them into the business's subscription_status, and
the journey engine acting on it: canceled stops sending, past_due holds, active resumes;
an older event never overwrites a newer one, and reconciliation heals a missed webhook."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fake_stripe import API_KEY, FakeStripe, subscription
from stripe_events import header, payment_failed, subscription_event

from blippsync.channels import Delivery, Message
from blippsync.config import Config, load_config
from blippsync.connections import ensure_connection
from blippsync.daemon import leases
from blippsync.daemon.worker import Worker
from blippsync.database import Database
from blippsync.http import HttpServer, HttpState, build_app
from blippsync.journeys import execute_due_steps, route_events
from blippsync.journeys.apply import apply_sequence_file
from blippsync.journeys.definitions import SequenceFile, parse_sequence
from blippsync.journeys.explain import explain_customer, story_lines
from blippsync.metrics import DaemonMetrics
from blippsync.plugins import load_plugins

SECRET = "whsec_e2e_0123456789abcdef"
CUSTOMER = "cus_E2eBillingTest"


class Recorder:
    name = "recorder"
    kinds = frozenset({"email", "sms"})

    def __init__(self) -> None:
        self.sent: list[Message] = []

    def send(self, message: Message, config: Config) -> Delivery:
        self.sent.append(message)
        return Delivery(provider_id=f"m{len(self.sent)}")


@pytest.fixture
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        yield server


@pytest.fixture
def config(tmp_path: Path, database_url: str, fake: FakeStripe) -> Config:
    path = tmp_path / "config.toml"
    path.write_text(f'[database]\nurl = "{database_url}"\n'
                    '[channels]\nemail = "recorder"\nsms = "recorder"\n'
                    '[journeys]\nemail_hours = "00:00-24:00"\nsms_hours = "00:00-24:00"\n'
                    f'[plugins.stripe]\nwebhook_secret = "whsec_retired, {SECRET}"\n'
                    f'api_key = "{API_KEY}"\nbase_url = "{fake.url}"\n')
    return load_config(path, environ={})


@pytest.fixture
def world(db: Database, config: Config) -> Iterator[dict[str, Any]]:
    plugins = load_plugins()
    assert "stripe" in plugins.connectors, plugins.problems
    with db.begin() as conn:
        business = conn.execute(sa.text(
            "INSERT INTO businesses (name, created_by, stripe_customer_id, subscription_status, "
            "google_review_url) VALUES ('Billed Co', 'o@billed.test', :c, 'active', "
            "'https://g.page/r/billed/review') RETURNING id"), {"c": CUSTOMER}).scalar_one()
        connection = ensure_connection(conn, business, "stripe", CUSTOMER)
    file = SequenceFile(path=Path("t.toml"), business={"id": str(business)}, sequences=(
        parse_sequence({"name": "Ask", "trigger_source": "manual",
                        "trigger_event_type": "job_completed", "status": "active",
                        "steps": [{"type": "email", "purpose": "thank_you", "subject": "Thanks",
                                   "body": "Thanks!"},
                                  {"type": "email", "delay_minutes": 60, "purpose": "review",
                                   "subject": "Review us", "body": "{{ review_link }}"}]},
                       "t.toml"),))
    apply_sequence_file(db, file)
    state = HttpState(config=config, db=db, plugins=plugins, metrics=DaemonMetrics(db),
                      scheduler_age=lambda: 0.0, daemon_id="test")
    server = HttpServer(build_app(state), "127.0.0.1", 0)
    server.start()
    worker = Worker(db=db, config=config, plugins=plugins, metrics=state.metrics, owner="test")
    channel = Recorder()
    yield {"business": business, "connection": connection, "url": f"http://127.0.0.1:{server.port}",
           "worker": worker, "plugins": plugins, "channel": channel}
    server.stop()


def _deliver(world: dict[str, Any], body: bytes, *, secret: str = SECRET,
             signed_at: int | None = None) -> httpx.Response:
    signature = header(secret, signed_at or int(time.time()), body)
    return httpx.post(f"{world['url']}/webhooks/stripe", content=body,
                      headers={"content-type": "application/json; charset=utf-8",
                               "stripe-signature": signature})


def _process(db: Database, world: dict[str, Any]) -> None:
    """One daemon round: lease what is due (webhook notices waiting, or a sync), work on it."""
    for lease in leases.claim(db, "test", limit=10, lease_seconds=60):
        world["worker"].work_on(lease, threading.Event())


def _status(db: Database, world: dict[str, Any]) -> tuple[str, datetime | None]:
    with db.connect() as conn:
        row = conn.execute(sa.text("SELECT subscription_status, subscription_status_at "
                                   "FROM businesses WHERE id = :b"),
                           {"b": world["business"]}).one()
    return row.subscription_status, row.subscription_status_at


def _customer_with_event(db: Database, business: uuid.UUID) -> uuid.UUID:
    with db.begin() as conn:
        customer = conn.execute(sa.text(
            "INSERT INTO customers (business_id, name, email, source, external_id) VALUES "
            "(:b, 'Ada', :e, 'manual', :x) RETURNING id"),
            {"b": business, "e": f"{uuid.uuid4().hex[:8]}@example.com",
             "x": uuid.uuid4().hex}).scalar_one()
        conn.execute(sa.text(
            "INSERT INTO trigger_events (business_id, source, event_type, customer_id, "
            "occurred_at, dedupe_key) VALUES (:b, 'manual', 'job_completed', :c, now(), :k)"),
            {"b": business, "c": customer, "k": uuid.uuid4().hex})
    return customer


def _journeys(db: Database, config: Config, world: dict[str, Any], at: datetime) -> None:
    route_events(db, config, now=at)
    execute_due_steps(db, config, {"recorder": world["channel"]}, now=at)


def test_canceled_stops_sending_and_active_resumes(db: Database, config: Config,
                                                   world: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    created = int(now.timestamp())
    _customer_with_event(db, world["business"])
    _journeys(db, config, world, now)
    assert [m.subject for m in world["channel"].sent] == ["Thanks"]

    canceled = subscription_event("customer.subscription.deleted", "sub_A", CUSTOMER, "active",
                                  created=created, event_id="evt_cancel")
    answer = _deliver(world, canceled)
    assert answer.status_code == 200 and answer.json() == {"received": 1, "duplicates": 0}
    _process(db, world)
    assert _status(db, world)[0] == "canceled"

    _customer_with_event(db, world["business"])  # a new job while canceled
    _journeys(db, config, world, now + timedelta(hours=2))
    assert [m.subject for m in world["channel"].sent] == ["Thanks"]  # nothing more was sent
    with db.connect() as conn:
        reasons = conn.execute(sa.text(
            "SELECT status_reason FROM customer_enrollments UNION ALL "
            "SELECT reason FROM enrollment_decisions WHERE decision = 'skipped'")).scalars().all()
    assert reasons == ["subscription_inactive", "subscription_inactive"]

    # a retry of an OLDER event (the subscription still active, an hour before) changes nothing
    stale = subscription_event("customer.subscription.updated", "sub_A", CUSTOMER, "active",
                               created=created - 3600, event_id="evt_old_update")
    assert _deliver(world, stale).json()["received"] == 1
    _process(db, world)
    assert _status(db, world) == ("canceled", datetime.fromtimestamp(created, UTC))
    assert _deliver(world, canceled).json() == {"received": 0, "duplicates": 1}

    resubscribed = subscription_event("customer.subscription.created", "sub_B", CUSTOMER,
                                      "active", created=created + 10, event_id="evt_new")
    _deliver(world, resubscribed)
    _process(db, world)
    assert _status(db, world)[0] == "active"
    _customer_with_event(db, world["business"])
    _journeys(db, config, world, now + timedelta(hours=3))
    assert [m.subject for m in world["channel"].sent] == ["Thanks", "Thanks"]


def test_past_due_holds_journeys_until_the_payment_succeeds(db: Database, config: Config,
                                                            world: dict[str, Any]) -> None:
    now = datetime.now(UTC)
    created = int(now.timestamp())
    first = _customer_with_event(db, world["business"])
    _journeys(db, config, world, now)
    _deliver(world, payment_failed("in_1", CUSTOMER, "sub_A", created=created,
                                   event_id="evt_failed", new_shape=True))
    _process(db, world)
    assert _status(db, world)[0] == "past_due"
    _customer_with_event(db, world["business"])
    _journeys(db, config, world, now + timedelta(hours=2))  # review step due: held
    assert [m.subject for m in world["channel"].sent] == ["Thanks"]
    story = "\n".join(story_lines(explain_customer(db, str(first))))
    assert "enrollment in 'Ask': active" in story
    assert "[subscription past_due: waiting until it is active again]" in story
    _deliver(world, subscription_event("customer.subscription.updated", "sub_A", CUSTOMER,
                                       "active", created=created + 60, event_id="evt_paid"))
    _process(db, world)
    _journeys(db, config, world, now + timedelta(hours=3))
    assert sorted(m.subject for m in world["channel"].sent) == ["Review us", "Thanks", "Thanks"]


def test_forged_stale_or_unsigned_deliveries_change_nothing(db: Database,
                                                            world: dict[str, Any]) -> None:
    body = subscription_event("customer.subscription.deleted", "sub_A", CUSTOMER, "active",
                              created=int(time.time()), event_id="evt_forged")
    assert _deliver(world, body, secret="whsec_attacker").status_code == 401
    assert _deliver(world, body, signed_at=int(time.time()) - 3600).status_code == 401
    assert httpx.post(f"{world['url']}/webhooks/stripe", content=body,
                      headers={"content-type": "application/json"}).status_code == 401
    assert _deliver(world, body, secret="whsec_retired").status_code == 200  # rotation
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM webhook_deliveries")).scalar() == 1


def test_reconciliation_heals_a_missed_webhook(db: Database, config: Config,
                                               world: dict[str, Any], fake: FakeStripe) -> None:
    fake.subscriptions = [subscription("sub_A", CUSTOMER, "canceled", 1_700_000_000),
                          subscription("sub_B", CUSTOMER, "past_due", 1_700_100_000),
                          subscription("sub_X", "cus_Other", "active", 1_700_200_000)]
    _process(db, world)  # a new connection is due at once: the daemon reconciles it
    status, at = _status(db, world)
    assert status == "past_due" and at is not None
    assert abs((datetime.now(UTC) - at).total_seconds()) < 60
    # an event from before the listing, delivered late, does not undo it
    _deliver(world, subscription_event("customer.subscription.updated", "sub_B", CUSTOMER,
                                       "active", created=int(at.timestamp()) - 5,
                                       event_id="evt_late"))
    _process(db, world)
    assert _status(db, world)[0] == "past_due"
