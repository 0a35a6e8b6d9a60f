"""What to do with one due enrollment: advance, defer, stop, complete, or send a step.

Pure (no database): the executor hands it everything it loaded for the batch. Steps that
send nothing, or that are skipped, are walked through in the same pass while the next
one is due at once, so "wait 0 then sms" costs one claim, not two.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from blippsync.journeys.hours import Window, parse_window
from blippsync.journeys.recipient_zone import next_allowed_everywhere, recipient_zones
from blippsync.journeys.rules import BILLABLE_STATUSES

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
SENT_STATUSES = frozenset({"sent", "delivered", "clicked"})
FINISHED_STATUSES = SENT_STATUSES | {"undelivered", "unknown", "failed"}  # never sent again
SMS_WINDOW_SECONDS = 24 * 3600
MAX_STEPS_PER_PASS = 50


@dataclass(frozen=True, slots=True)
class Policy:
    """Deployment-wide settings the planner needs (from [journeys])."""

    sms_hours: Window
    email_hours: Window
    sms_daily_cap: int
    lease_seconds: int


@dataclass(slots=True)
class Transition:
    """The enrollment row after this pass (applied only if still at expected_step)."""

    enrollment_id: uuid.UUID
    expected_step: int
    step: int
    status: str = "active"
    reason: str | None = None
    next_at: datetime | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class SendPlan:
    """Send step `step` of the enrollment; `ledger_id` is None for a first attempt."""

    step: int
    step_row: Any
    ledger_id: uuid.UUID | None
    attempts: int


@dataclass(slots=True)
class Outcome:
    transition: Transition
    send: SendPlan | None = None
    mark_unknown: list[uuid.UUID] = field(default_factory=list)  # ledger rows found in flight


def plan(*, enrollment: Any, steps: list[Any], settings: dict[str, Any], customer: Any | None,
         business: Any, feedback_at: datetime | None, ledger: dict[int, Any], clicked: bool,
         sms_recent: list[datetime], policy: Policy, now: datetime) -> Outcome:
    start = enrollment.current_step
    t = Transition(enrollment_id=enrollment.id, expected_step=start, step=start)
    out = Outcome(transition=t)
    stop = _stop_reason(customer, business, feedback_at, enrollment.enrolled_at)
    if stop:
        t.status, t.reason = "stopped", stop
        return out
    for _ in range(MAX_STEPS_PER_PASS):
        if t.step >= len(steps):
            t.status, t.reason, t.next_at = "completed", None, None
            return out
        step = steps[t.step]
        done = ledger.get(t.step)
        if step.step_type not in ("email", "sms"):
            _advance(t, steps, now)
        elif done is not None and done.status in FINISHED_STATUSES:
            if done.status == "failed" and settings.get("on_step_failure") == "stop":
                t.status, t.reason = "failed", f"step {t.step + 1} failed: {done.last_error}"
                return out
            _advance(t, steps, now)
        elif done is not None and done.in_flight_since is not None:
            out.mark_unknown.append(done.id)  # a worker died mid-send: never resend blindly
            t.notes.append(f"step {t.step + 1}: outcome unknown (worker lost mid-send)")
            _advance(t, steps, now)
        else:
            skip = _skip_reason(step, customer, clicked)
            if skip:
                t.notes.append(f"step {t.step + 1}: skipped ({skip})")
                _advance(t, steps, now)
            else:
                when, held = _allowed_at(step, settings, business, customer, sms_recent,
                                         policy, now)
                if when > now:
                    t.next_at = when
                    if held:
                        t.notes.append(f"step {t.step + 1}: {held}")
                    return out
                t.next_at = now + timedelta(seconds=policy.lease_seconds)
                out.send = SendPlan(step=t.step, step_row=step,
                                    ledger_id=done.id if done is not None else None,
                                    attempts=done.attempts if done is not None else 0)
                if step.channel == "sms":
                    sms_recent.append(now)
                return out
        if t.next_at is not None and t.next_at > now:
            return out
    return out


def _advance(t: Transition, steps: list[Any], now: datetime) -> None:
    t.step += 1
    t.next_at = now + timedelta(minutes=steps[t.step].delay_minutes) if t.step < len(steps) \
        else now


def _stop_reason(customer: Any | None, business: Any, feedback_at: datetime | None,
                 enrolled_at: datetime) -> str | None:
    if customer is None or customer.deleted_at is not None:
        return "customer_deleted"
    if customer.merged_into_id is not None:
        return "customer_merged"
    if customer.archived:
        return "customer_archived"
    if customer.opted_out:
        return "customer_opted_out"
    if not customer.review_requests_allowed:
        return "review_requests_not_allowed"
    if business.subscription_status not in BILLABLE_STATUSES:
        return "subscription_inactive"
    if feedback_at is not None and feedback_at >= enrolled_at:
        return "private_feedback"
    return None


def _skip_reason(step: Any, customer: Any, clicked: bool) -> str | None:
    if clicked and step.message_purpose == "review":
        return "review link already clicked"
    if step.channel == "sms":
        if customer.sms_allowed is False:
            return "customer does not accept SMS"
        if not customer.sms_phone or not E164.match(customer.sms_phone):
            return "no SMS-capable E.164 number"
        if getattr(customer, "sms_suppressed", None):
            return f"the carrier refused this number for good: {customer.sms_suppressed}"
    elif not customer.email:
        return "no email address"
    elif getattr(customer, "email_opted_out", False):
        return "customer unsubscribed from email"
    return None


def _allowed_at(step: Any, settings: dict[str, Any], business: Any, customer: Any,
                sms_recent: list[datetime], policy: Policy,
                now: datetime) -> tuple[datetime, str | None]:
    """When the step may go, and (if held by quiet hours) a note saying in which zone."""
    zones = recipient_zones(business.timezone, getattr(customer, "timezone", None),
                            getattr(customer, "sms_phone", None) or customer.phone)
    at = now
    if step.channel == "sms":
        window = policy.sms_hours
        if settings.get("sms_hours"):
            window = window.narrowed(parse_window(settings["sms_hours"]))
        recent = sorted(t for t in sms_recent if t > now - timedelta(seconds=SMS_WINDOW_SECONDS))
        if policy.sms_daily_cap > 0 and len(recent) >= policy.sms_daily_cap:
            at = recent[len(recent) - policy.sms_daily_cap] + timedelta(seconds=SMS_WINDOW_SECONDS)
    else:
        window = parse_window(settings["email_hours"]) if settings.get("email_hours") \
            else policy.email_hours
    when, held_by = next_allowed_everywhere(at, zones, window)
    if held_by is None:
        return when, None
    whose = "the business's" if held_by == zones.business else "the recipient's"
    return when, (f"{step.channel} held until {when:%Y-%m-%d %H:%M} UTC: quiet hours "
                  f"(allowed {window}) in {whose} zone {held_by}; {zones.describe()}, "
                  f"business zone {zones.business}")
