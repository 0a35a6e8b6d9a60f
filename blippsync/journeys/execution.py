"""Executing due steps: claim, plan, take the send key, send, record.

Exactly once, in three short transactions per batch:

1. claim due enrollments (SKIP LOCKED), plan each one, and for every message to send
   insert its ledger row in review_requests under the unique send key
   '<enrollment>:<step>' -- BEFORE any provider is called -- and push the enrollment's
   next_step_at out by the send lease so no other worker picks it up;
2. outside any transaction, mark a small chunk of rows in flight (committed), call the
   channel for each, and move on to the next chunk;
3. record every outcome and advance the enrollments.

A worker killed anywhere leaves either rows never marked in flight (sent later, for the
first time) or rows in flight (marked 'unknown' by whoever finds them after the lease:
never retried blindly). The unique send key means no second row, hence no second send.
"""

from __future__ import annotations

import json
import logging
import secrets
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa

from blippsync.channels import (
    Channel,
    Delivery,
    DeliveryFailed,
    DeliveryUnknown,
    Message,
)
from blippsync.config import Config
from blippsync.database import Database, driver_connection
from blippsync.errors import PluginError
from blippsync.journeys import queries as q
from blippsync.journeys.hours import parse_window, retry_delay_seconds
from blippsync.journeys.planner import SMS_WINDOW_SECONDS, Outcome, Policy, Transition, plan
from blippsync.journeys.render import RenderContext, render_step
from blippsync.journeys.rules import HELD_STATUSES
from blippsync.journeys.templates import TemplateProblem

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExecutionSummary:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    retrying: int = 0
    deferred: int = 0  # quiet hours or SMS cap
    completed: int = 0
    stopped: dict[str, int] = field(default_factory=dict)  # reason -> count

    def __add__(self, o: ExecutionSummary) -> ExecutionSummary:
        return ExecutionSummary(
            self.claimed + o.claimed, self.sent + o.sent, self.failed + o.failed,
            self.unknown + o.unknown, self.retrying + o.retrying, self.deferred + o.deferred,
            self.completed + o.completed, dict(Counter(self.stopped) + Counter(o.stopped)))


@dataclass(slots=True)
class _Pending:
    """One message between taking its key and recording its outcome."""

    ledger_id: uuid.UUID
    transition: Transition
    steps: list[Any]
    settings: Mapping[str, Any]
    attempts: int
    message: Message | None  # None: rendering failed (error in `error`)
    channel: Channel
    error: str | None = None
    customer_id: uuid.UUID | None = None
    result: Any = None  # Delivery, DeliveryFailed or DeliveryUnknown


def execute_due_steps(db: Database, config: Config, plugins: Any, *,
                      batch_size: int | None = None, now: datetime | None = None,
                      max_batches: int | None = None) -> ExecutionSummary:
    """Run every due step (or max_batches batches); return what happened."""
    size = batch_size or config["journeys.execute_batch_size"]
    channels = _channels(config, plugins)
    policy = Policy(sms_hours=parse_window(config["journeys.sms_hours"]),
                    email_hours=parse_window(config["journeys.email_hours"]),
                    sms_daily_cap=config["journeys.sms_daily_cap"],
                    lease_seconds=config["journeys.send_lease_seconds"])
    with db.begin() as conn:
        conn.execute(q.STOP_ARCHIVED_SEQUENCES)
    steps_cache: dict[uuid.UUID, tuple[dict[str, Any], list[Any]]] = {}
    total = ExecutionSummary()
    batches = 0
    while max_batches is None or batches < max_batches:
        at = now or datetime.now(UTC)
        summary = _run_batch(db, config, channels, policy, steps_cache, size, at)
        batches += 1
        total = total + summary
        if summary.claimed < size:
            break
    return total


def _channels(config: Config, plugins: Any) -> dict[str, Any]:
    available = getattr(plugins, "channels", plugins)
    chosen = {}
    for kind in ("email", "sms"):
        name = config[f"channels.{kind}"]
        channel = available.get(name)
        if channel is None:
            known = ", ".join(sorted(available)) or "none"
            raise PluginError(f"channels.{kind} = {name!r}: no such channel (loaded: {known})")
        if kind not in channel.kinds:
            raise PluginError(f"channels.{kind} = {name!r}: that channel cannot send {kind}")
        chosen[kind] = channel
    return chosen


def _run_batch(db: Database, config: Config, channels: dict[str, Any], policy: Policy,
               steps_cache: dict[uuid.UUID, tuple[dict[str, Any], list[Any]]], size: int,
               now: datetime) -> ExecutionSummary:
    with db.begin() as conn:
        claimed, outcomes, pending, counts = _claim_and_plan(conn, config, channels, policy,
                                                             steps_cache, size, now)
    if not claimed:
        return ExecutionSummary()
    _deliver(db, config, pending, now)
    with db.begin() as conn:
        sent, failed, unknown, retrying, stops = _record(conn, config, pending, now)
    counts["completed"] += stops.pop("completed", 0)
    for reason, n in stops.items():
        counts["stopped"][reason] += n
    return ExecutionSummary(claimed=claimed, sent=sent, failed=failed,
                            unknown=unknown + counts["unknown"], retrying=retrying,
                            deferred=counts["deferred"], completed=counts["completed"],
                            stopped=dict(counts["stopped"]))


def _claim_and_plan(conn: sa.Connection, config: Config, channels: dict[str, Any],
                    policy: Policy, steps_cache: dict[uuid.UUID, tuple[dict[str, Any], list[Any]]],
                    size: int, now: datetime) -> tuple[int, list[Outcome], list[_Pending], Any]:
    active = [r.id for r in conn.execute(q.ACTIVE_SEQUENCE_IDS, {"held": list(HELD_STATUSES)})]
    counts: dict[str, Any] = {"deferred": 0, "completed": 0, "unknown": 0, "stopped": Counter()}
    if not active:
        return 0, [], [], counts
    rows = conn.execute(q.CLAIM_DUE, {"sequences": active, "now": now, "limit": size}).all()
    if not rows:
        return 0, [], [], counts
    missing = [s for s in {r.sequence_id for r in rows} if s not in steps_cache]
    if missing:
        for row in conn.execute(q.SEQUENCE_STEPS, {"ids": missing}):
            settings, steps = steps_cache.setdefault(row.sequence_id, (row.settings or {}, []))
            if row.step_order is not None:
                steps.append(row)
    customer_ids = list({r.customer_id for r in rows})
    customers = {c.id: c for c in conn.execute(q.EXEC_CUSTOMERS, {"ids": customer_ids})}
    businesses = {b.id: b for b in conn.execute(
        q.EXEC_BUSINESSES, {"ids": list({c.business_id for c in customers.values()})})}
    feedback: dict[uuid.UUID, datetime] = dict(
        conn.execute(q.LAST_FEEDBACK, {"ids": customer_ids}).all())
    ledger: dict[uuid.UUID, dict[int, Any]] = {}
    clicked: set[uuid.UUID] = set()
    for row in conn.execute(q.LEDGER_ROWS, {"ids": [r.id for r in rows]}):
        ledger.setdefault(row.enrollment_id, {})[row.step_order] = row
        if row.clicked_at is not None:
            clicked.add(row.enrollment_id)
    sms_recent: dict[uuid.UUID, list[datetime]] = {}
    since = now - timedelta(seconds=SMS_WINDOW_SECONDS)
    for row in conn.execute(q.RECENT_SMS, {"ids": customer_ids, "since": since}):
        sms_recent.setdefault(row.customer_id, []).append(row.created_at)

    outcomes: list[Outcome] = []
    pending: list[_Pending] = []
    new_ledger: list[tuple[Any, ...]] = []
    unknown: list[uuid.UUID] = []
    ctx = RenderContext.from_config(config)
    for row in rows:
        settings, steps = steps_cache[row.sequence_id]
        customer = customers.get(row.customer_id)
        business = businesses.get(customer.business_id) if customer else None
        if customer is None or business is None:  # the customer row is gone (ON DELETE CASCADE)
            outcomes.append(Outcome(Transition(row.id, row.current_step, row.current_step,
                                               "stopped", "customer_deleted")))
            continue
        out = plan(enrollment=row, steps=steps, settings=settings, customer=customer,
                   business=business, feedback_at=feedback.get(customer.id),
                   ledger=ledger.get(row.id, {}), clicked=row.id in clicked,
                   sms_recent=sms_recent.setdefault(customer.id, []), policy=policy, now=now)
        outcomes.append(out)
        unknown.extend(out.mark_unknown)
        t = out.transition
        if out.send is None:
            if t.status == "completed":
                counts["completed"] += 1
            elif t.status != "active":
                counts["stopped"][t.reason or t.status] += 1
            elif t.next_at is not None and t.next_at > now and t.step == row.current_step:
                counts["deferred"] += 1
            continue
        step = out.send.step_row
        ledger_id = out.send.ledger_id or uuid.uuid4()
        send_key = f"{row.id}:{out.send.step}"
        token = secrets.token_urlsafe(12)
        message, error = None, None
        try:
            message = render_step(ctx, step=step, customer=customer, business=business,
                                  send_key=send_key, token=token)
        except TemplateProblem as exc:
            error = str(exc)
        if out.send.ledger_id is None:
            meta: dict[str, str | None] = {"send_key": send_key, "enrollment_id": str(row.id)}
            if message is not None:
                meta.update({"to": message.to, "subject": message.subject, "body": message.body})
            new_ledger.append((ledger_id, business.id, customer.id, row.id, row.sequence_id,
                               out.send.step, step.message_purpose, "scheduled", step.channel,
                               send_key, token, 0, json.dumps(meta), now))
        pending.append(_Pending(ledger_id=ledger_id, transition=t, steps=steps, settings=settings,
                                attempts=out.send.attempts, message=message,
                                channel=channels[step.channel], error=error,
                                customer_id=customer.id))
    raw = driver_connection(conn)
    if new_ledger:
        with raw.cursor() as cur, cur.copy(q.COPY_LEDGER) as copy:
            for values in new_ledger:
                copy.write_row(values)
    if unknown:
        conn.execute(q.MARK_UNKNOWN, {"ids": unknown})
        counts["unknown"] += len(unknown)
    _apply_transitions(raw, [o.transition for o in outcomes])
    for p in pending:  # phase 3 starts from the row as phase 1 left it
        p.transition = Transition(p.transition.enrollment_id, p.transition.step, p.transition.step)
    return len(rows), outcomes, pending, counts


def _deliver(db: Database, config: Config, pending: list[_Pending], now: datetime) -> None:
    """Mark a chunk in flight (committed), then call the channel for each; repeat."""
    sendable = [p for p in pending if p.message is not None]
    size = max(1, config["journeys.in_flight_chunk"])  # the most a crash can leave unknown
    for start in range(0, len(sendable), size):
        chunk = sendable[start:start + size]
        with db.begin() as conn:
            marked = {r.id for r in conn.execute(
                q.MARK_IN_FLIGHT, {"ids": [p.ledger_id for p in chunk], "now": now})}
        for p in chunk:
            if p.ledger_id not in marked:  # someone else owns it now: do not touch
                p.message, p.error = None, "skip"
                continue
            p.attempts += 1
            try:
                # sendable holds only rendered messages
                p.result = p.channel.send(cast(Message, p.message), config)
            except (DeliveryFailed, DeliveryUnknown) as exc:
                p.result = exc
            except Exception as exc:  # a plugin bug: it may have sent, so: unknown
                log.exception("channel %s failed unexpectedly", p.channel.name)
                p.result = DeliveryUnknown(f"channel {p.channel.name} raised "
                                           f"{type(exc).__name__}: {exc}")


def _record(conn: sa.Connection, config: Config, pending: list[_Pending],
            now: datetime) -> tuple[int, int, int, int, Counter[str]]:
    max_attempts = config["journeys.max_attempts"]
    backoff = config["journeys.retry_backoff_seconds"]
    ledger_rows: list[tuple[Any, ...]] = []
    transitions: list[Transition] = []
    opt_outs: list[uuid.UUID] = []
    sent = failed = unknown = retrying = 0
    stops: Counter[str] = Counter()
    for p in pending:
        t = p.transition
        if p.error == "skip":
            continue
        result: Any = p.result if p.message is not None else \
            DeliveryFailed(p.error or "not rendered", retryable=False)
        step_no = t.step
        if isinstance(result, Delivery):
            sent += 1
            ledger_rows.append((p.ledger_id, "sent", now, None, json.dumps(
                {"provider_id": result.provider_id, "channel_plugin": p.channel.name,
                 **dict(result.details)})))
            _advance_after(t, p.steps, now)
        elif isinstance(result, DeliveryUnknown):
            unknown += 1
            ledger_rows.append((p.ledger_id, "unknown", None, result.reason,
                                json.dumps({"channel_plugin": p.channel.name})))
            t.notes.append(f"step {step_no + 1}: outcome unknown ({result.reason})")
            _advance_after(t, p.steps, now)
        else:
            if result.opt_out and p.customer_id is not None:
                opt_outs.append(p.customer_id)
            if result.retryable and p.attempts < max_attempts:
                retrying += 1
                ledger_rows.append((p.ledger_id, "scheduled", None, result.reason, "{}"))
                t.next_at = now + timedelta(seconds=retry_delay_seconds(p.attempts, backoff))
            else:
                failed += 1
                ledger_rows.append((p.ledger_id, "failed", None, result.reason, "{}"))
                t.notes.append(f"step {step_no + 1}: failed ({result.reason})")
                if p.settings.get("on_step_failure") == "stop":
                    t.status, t.reason, t.next_at = "failed", f"step {step_no + 1} failed", None
                    stops["step_failed"] += 1
                else:
                    _advance_after(t, p.steps, now)
        transitions.append(t)
    raw = driver_connection(conn)
    if ledger_rows:
        with raw.cursor() as cur:
            cur.execute(q.RECORD_OUTCOMES, [list(c) for c in zip(*ledger_rows, strict=True)],
                        binary=True)
    if opt_outs:
        conn.execute(q.OPT_OUT_SMS, {"ids": opt_outs, "now": now})
    _apply_transitions(raw, transitions)
    stops["completed"] = sum(t.status == "completed" for t in transitions)
    return sent, failed, unknown, retrying, stops


def _advance_after(t: Transition, steps: list[Any], now: datetime) -> None:
    t.step += 1
    if t.step >= len(steps):
        t.status, t.next_at = "completed", None
    else:
        t.next_at = now + timedelta(minutes=steps[t.step].delay_minutes)


def _apply_transitions(raw: Any, transitions: list[Transition]) -> None:
    if not transitions:
        return
    columns = [list(c) for c in zip(*[(t.enrollment_id, t.expected_step, t.step, t.status, t.reason,
                          t.next_at, json.dumps(t.notes) if t.notes else None)
                         for t in transitions], strict=True)]
    with raw.cursor() as cur:
        cur.execute(q.UPDATE_ENROLLMENTS, columns, binary=True)
