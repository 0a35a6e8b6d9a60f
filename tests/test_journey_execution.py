"""Executing steps: sending, retries, unknown outcomes, caps and every stop condition."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
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

from blippsync.channels import Delivery, DeliveryFailed, DeliveryUnknown, Message
from blippsync.config import Config
from blippsync.database import Database
from blippsync.journeys import execute_due_steps, route_events
from blippsync.journeys.inbound import record_inbound_sms, record_review_click
from blippsync.journeys.retention import run_maintenance
from blippsync.plugins import load_plugins

NOW = noon_utc()  # 12:00 in New York
REVIEW_ONLY = [{"type": "email", "purpose": "review", "subject": "Review us",
                "body": "{{ review_link }}"}]


class Scripted:
    """A channel whose answers the test scripts: Delivery, DeliveryFailed or DeliveryUnknown."""

    name = "scripted"
    kinds = frozenset({"email", "sms"})

    def __init__(self, *answers: Any) -> None:
        self.answers = list(answers)
        self.sent: list[Message] = []

    def send(self, message: Message, config: Config) -> Delivery:
        self.sent.append(message)
        answer = self.answers.pop(0) if self.answers else Delivery(provider_id="ok")
        if isinstance(answer, Exception):
            raise answer
        return answer


def _sql(db: Database, statement: str, **params: Any) -> None:
    with db.begin() as conn:
        conn.execute(sa.text(statement), params)


def _enroll(db: Database, database_url: str, tmp_path: Path, steps: list | None = None,
            settings: dict | None = None, **customer: Any) -> tuple[Config, Any, Any, Any]:
    business = make_business(db)
    seq_id, = apply(db, business, sequence(steps=steps, settings=settings))
    cust = make_customer(db, business, **customer)
    add_event(db, business, cust)
    config = journey_config(tmp_path, database_url, channels__email="scripted",
                            channels__sms="scripted", journeys__review_link_base_url="https://r.example")
    assert route_events(db, config, now=NOW).enrolled == 1
    return config, business, seq_id, cust


def _enrollment(db: Database) -> Any:
    (row,) = rows(db, "SELECT status, status_reason, current_step, next_step_at, metadata "
                      "FROM public.customer_enrollments")
    return row


def test_full_journey_sends_each_step_then_completes(db: Database, database_url: str,
                                                     tmp_path: Path) -> None:
    config, _, _, _ = _enroll(db, database_url, tmp_path)
    channel = Scripted()
    first = execute_due_steps(db, config, {"scripted": channel}, now=NOW)
    assert first.sent == 1 and _enrollment(db).next_step_at == NOW + timedelta(minutes=60)
    assert execute_due_steps(db, config, {"scripted": channel}, now=NOW).claimed == 0  # not due
    second = execute_due_steps(db, config, {"scripted": channel}, now=NOW + timedelta(hours=1))
    assert second.sent == 1 and second.completed == 1
    assert _enrollment(db).status == "completed"
    sms, email = channel.sent
    assert sms.kind == "sms" and sms.body == "Thanks Ada from " + sms.business_name + \
        "! Reply STOP to opt out."
    assert email.kind == "email" and email.subject == "How did we do, Ada?"
    token = email.metadata["review_token"]
    # everyone gets the same public review link
    assert email.body.startswith(f"Leave us a review: https://r.example/r/{token}\n")
    ledger = rows(db, "SELECT send_key, status, channel, sent_at, metadata ->> 'provider_id' AS p "
                      "FROM public.review_requests ORDER BY step_order")
    assert [(r.status, r.channel, r.p) for r in ledger] == [("sent", "sms", "ok"),
                                                            ("sent", "email", "ok")]


def test_failures_retry_with_backoff_then_fail(db: Database, database_url: str,
                                               tmp_path: Path) -> None:
    config, *_ = _enroll(db, database_url, tmp_path, steps=REVIEW_ONLY)
    boom = DeliveryFailed("421 try later", retryable=True)
    channel = Scripted(boom, boom, boom)
    at = NOW
    for attempt, wait_seconds in ((1, 300), (2, 1200)):
        summary = execute_due_steps(db, config, {"scripted": channel}, now=at)
        assert summary.retrying == 1, attempt
        assert _enrollment(db).next_step_at == at + timedelta(seconds=wait_seconds)
        at += timedelta(seconds=wait_seconds)
    summary = execute_due_steps(db, config, {"scripted": channel}, now=at)
    assert summary.failed == 1
    (row,) = rows(db, "SELECT status, attempts, last_error FROM public.review_requests")
    assert (row.status, row.attempts, row.last_error) == ("failed", 3, "421 try later")
    assert len(channel.sent) == 3
    assert _enrollment(db).status == "completed"  # on_step_failure = continue (default)


def test_failure_can_stop_the_enrollment(db: Database, database_url: str, tmp_path: Path) -> None:
    config, *_ = _enroll(db, database_url, tmp_path, settings={"on_step_failure": "stop"})
    channel = Scripted(DeliveryFailed("invalid number", retryable=False))
    execute_due_steps(db, config, {"scripted": channel}, now=NOW)
    assert (_enrollment(db).status, _enrollment(db).status_reason) == ("failed", "step 1 failed")


def test_unknown_outcome_is_not_retried(db: Database, database_url: str, tmp_path: Path) -> None:
    config, *_ = _enroll(db, database_url, tmp_path)
    channel = Scripted(DeliveryUnknown("read timeout"))
    execute_due_steps(db, config, {"scripted": channel}, now=NOW)
    execute_due_steps(db, config, {"scripted": channel}, now=NOW + timedelta(hours=2))
    statuses = [r.status for r in rows(db, "SELECT status FROM public.review_requests "
                                           "ORDER BY step_order")]
    assert statuses == ["unknown", "sent"] and len(channel.sent) == 2


def test_sms_needs_e164_and_no_opt_out(db: Database, database_url: str, tmp_path: Path) -> None:
    config, *_ = _enroll(db, database_url, tmp_path, phone="555-0123")
    channel = Scripted()
    execute_due_steps(db, config, {"scripted": channel}, now=NOW)
    assert channel.sent == []
    notes = _enrollment(db).metadata["notes"]
    assert notes == ["step 1: skipped (no SMS-capable E.164 number)"]


def test_sms_cap_per_24_hours(db: Database, database_url: str, tmp_path: Path) -> None:
    steps = [{"type": "sms", "text": f"message {i}"} for i in range(4)]
    config, *_ = _enroll(db, database_url, tmp_path, steps=steps)
    channel = Scripted()
    for minute in range(4):
        execute_due_steps(db, config, {"scripted": channel}, now=NOW + timedelta(minutes=minute))
    assert len(channel.sent) == 3  # the default cap
    assert _enrollment(db).next_step_at == NOW + timedelta(hours=24)


def test_inbound_stop_opts_out_at_once(db: Database, database_url: str, tmp_path: Path) -> None:
    config, business, _, customer = _enroll(db, database_url, tmp_path)
    assert record_inbound_sms(db, business, "+15555550123", " Stop ") == "stop"
    channel = Scripted()
    summary = execute_due_steps(db, config, {"scripted": channel}, now=NOW)
    assert channel.sent == [] and summary.stopped == {"customer_opted_out": 1}
    (cust,) = rows(db, "SELECT opted_out, sms_allowed FROM public.customers")
    assert cust.opted_out and cust.sms_allowed is False


def test_twilio_unsubscribed_error_opts_the_customer_out(db: Database, database_url: str,
                                                         tmp_path: Path) -> None:
    config, *_ = _enroll(db, database_url, tmp_path)
    channel = Scripted(DeliveryFailed("21610", retryable=False, opt_out=True))
    execute_due_steps(db, config, {"scripted": channel}, now=NOW)
    (cust,) = rows(db, "SELECT opted_out FROM public.customers")
    assert cust.opted_out


def test_clicked_review_link_skips_remaining_review_asks(db: Database, database_url: str,
                                                         tmp_path: Path) -> None:
    steps = REVIEW_ONLY + [{"type": "sms", "delay_minutes": 60, "purpose": "review",
                            "text": "Reminder: {{ review_link }}"},
                           {"type": "sms", "delay_minutes": 0, "purpose": "thank_you",
                            "text": "Thanks again!"}]
    config, *_ = _enroll(db, database_url, tmp_path, steps=steps)
    channel = Scripted()
    execute_due_steps(db, config, {"scripted": channel}, now=NOW)
    token = channel.sent[0].metadata["review_token"]
    assert record_review_click(db, token) is True
    execute_due_steps(db, config, {"scripted": channel}, now=NOW + timedelta(hours=1))
    assert [m.body for m in channel.sent[1:]] == ["Thanks again! Reply STOP to opt out."]
    assert _enrollment(db).status == "completed"
    assert rows(db, "SELECT status FROM public.review_requests WHERE step_order = 0")[0].status \
        == "clicked"


@pytest.mark.parametrize(("change", "reason"), [
    ("INSERT INTO public.private_feedback (business_id, customer_id, rating, source, created_at) "
     "SELECT business_id, id, 2, 'sms', :later FROM public.customers", "private_feedback"),
    ("UPDATE public.customers SET opted_out = true", "customer_opted_out"),
    ("UPDATE public.customers SET deleted_at = :later", "customer_deleted"),
    ("UPDATE public.customers SET archived = true", "customer_archived"),
    ("UPDATE public.businesses SET subscription_status = 'canceled'", "subscription_inactive"),
    ("UPDATE public.sequences SET status = 'archived'", "sequence_archived"),
])
def test_stop_conditions(change: str, reason: str, db: Database, database_url: str,
                         tmp_path: Path) -> None:
    config, *_ = _enroll(db, database_url, tmp_path)
    channel = Scripted()
    execute_due_steps(db, config, {"scripted": channel}, now=NOW)
    _sql(db, change, later=NOW + timedelta(minutes=5))
    execute_due_steps(db, config, {"scripted": channel}, now=NOW + timedelta(hours=1))
    assert len(channel.sent) == 1
    assert (_enrollment(db).status, _enrollment(db).status_reason) == ("stopped", reason)


def test_paused_sequence_waits_and_resumes(db: Database, database_url: str,
                                           tmp_path: Path) -> None:
    config, _, seq_id, _ = _enroll(db, database_url, tmp_path)
    channel = Scripted()
    _sql(db, "UPDATE public.sequences SET status = 'paused' WHERE id = :id", id=seq_id)
    assert execute_due_steps(db, config, {"scripted": channel}, now=NOW).claimed == 0
    assert _enrollment(db).status == "active" and _enrollment(db).current_step == 0
    _sql(db, "UPDATE public.sequences SET status = 'active' WHERE id = :id", id=seq_id)
    assert execute_due_steps(db, config, {"scripted": channel}, now=NOW).sent == 1


def test_merged_customer_stops_and_history_moves_to_survivor(db: Database, database_url: str,
                                                             tmp_path: Path) -> None:
    config, business, _, merged = _enroll(db, database_url, tmp_path)
    execute_due_steps(db, config, {"scripted": Scripted()}, now=NOW)
    survivor = make_customer(db, business)
    _sql(db, "UPDATE public.customers SET merged_into_id = :s WHERE id = :m", s=survivor, m=merged)
    summary = execute_due_steps(db, config, {"scripted": Scripted()}, now=NOW + timedelta(hours=1))
    assert summary.stopped == {"customer_merged": 1}
    assert run_maintenance(db, config, now=NOW).merged_customers == 1
    for table in ("customer_enrollments", "review_requests", "enrollment_decisions",
                  "trigger_events"):
        owners = {r.customer_id for r in rows(db, f"SELECT customer_id FROM public.{table}")}
        assert owners == {survivor}, table


def test_retention_archives_finished_enrollments_and_keeps_messages(
        db: Database, database_url: str, tmp_path: Path) -> None:
    config, *_ = _enroll(db, database_url, tmp_path, steps=REVIEW_ONLY)
    execute_due_steps(db, config, {"scripted": Scripted()}, now=NOW)
    assert _enrollment(db).status == "completed"
    assert run_maintenance(db, config).archived == 0  # finished just now
    later = datetime.now(UTC) + timedelta(days=91)
    assert run_maintenance(db, config, now=later).archived == 1
    assert rows(db, "SELECT count(*) AS n FROM public.customer_enrollments")[0].n == 0
    (archived,) = rows(db, "SELECT status FROM public.customer_enrollments_archive")
    assert archived.status == "completed"
    assert rows(db, "SELECT count(*) AS n FROM public.review_requests")[0].n == 1


def test_outbox_is_the_default_channel(db: Database, database_url: str, tmp_path: Path) -> None:
    config, *_ = _enroll(db, database_url, tmp_path)
    config = config.with_values(channels__email="outbox", channels__sms="outbox")
    summary = execute_due_steps(db, config, load_plugins(), now=NOW)
    assert summary.sent == 1
    files = list((tmp_path / "outbox").rglob("*.sms.txt"))
    assert len(files) == 1 and "Thanks Ada" in files[0].read_text()
    log_lines = (tmp_path / "outbox" / "outbox.jsonl").read_text().splitlines()
    assert len(log_lines) == 1


def test_steps_due_at_once_go_out_in_the_same_pass(db: Database, database_url: str,
                                                   tmp_path: Path) -> None:
    steps = [{"type": "email", "delay_minutes": 0, "subject": "Thanks", "body": "Thank you"},
             {"type": "sms", "delay_minutes": 0, "text": "Tell us how we did"}]
    config, *_ = _enroll(db, database_url, tmp_path, steps=steps)
    channel = Scripted()
    summary = execute_due_steps(db, config, {"scripted": channel}, now=NOW)
    assert [m.kind for m in channel.sent] == ["email", "sms"]  # one pass, not two
    assert (summary.sent, summary.completed) == (2, 1)
    assert _enrollment(db).status == "completed"


def test_unknown_messages_are_listed_and_released_by_the_operator(
        db: Database, database_url: str, tmp_path: Path) -> None:
    import subprocess
    import sys

    from blippsync.journeys.unknown import list_unknown

    config, *_ = _enroll(db, database_url, tmp_path)  # sms now, email an hour later
    channel = Scripted(DeliveryUnknown("read timeout"))
    execute_due_steps(db, config, {"scripted": channel}, now=NOW)
    (unknown,) = list_unknown(db)
    assert (unknown["channel"], unknown["step"], unknown["sent_to"]) == ("sms", 1, "+15555550123")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "blippsync", "--config",
                               str(tmp_path / "config.toml"), "messages", *args],
                              capture_output=True, text=True, timeout=60)

    listed = cli("unknown")
    assert listed.returncode == 0 and str(unknown["id"]) in listed.stdout
    assert cli("release", str(unknown["id"])).returncode == 2  # --not-delivered is required
    released = cli("release", "--not-delivered", str(unknown["id"]))
    assert released.returncode == 0, released.stderr
    assert "released 1 of 1" in released.stdout
    assert cli("release", "--not-delivered", str(unknown["id"])).returncode == 1  # once only

    for hours in (2, 4):  # the released sms is due at once; the email an hour after it
        execute_due_steps(db, config, {"scripted": channel}, now=NOW + timedelta(hours=hours))
    assert [m.kind for m in channel.sent] == ["sms", "sms", "email"]  # the sms again, once
    ledger = rows(db, "SELECT step_order, status, send_key FROM review_requests "
                      "ORDER BY step_order")
    assert [(r.step_order, r.status) for r in ledger] == [(0, "sent"), (1, "sent")]
    assert list_unknown(db) == []
    assert _enrollment(db).status == "completed"
    assert any("released after an unknown outcome" in n for n in _enrollment(db).metadata["notes"])

def test_sms_goes_to_the_mobile_number_when_the_customer_has_one(
        db: Database, database_url: str, tmp_path: Path) -> None:
    config, *_ = _enroll(db, database_url, tmp_path, phone="+16175550142")  # the landline
    _sql(db, "UPDATE public.customers SET mobile_phone = '+16175550143'")
    channel = Scripted()
    execute_due_steps(db, config, {"scripted": channel}, now=NOW)
    assert [m.to for m in channel.sent] == ["+16175550143"]
    # and a STOP from that mobile finds the customer
    business_id = rows(db, "SELECT business_id FROM public.customers")[0].business_id
    record_inbound_sms(db, business_id=business_id, from_number="+16175550143", body="STOP",
                       provider_id="SM1", now=NOW)
    assert rows(db, "SELECT opted_out FROM public.customers")[0].opted_out is True
