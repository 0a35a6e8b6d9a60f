"""Executing due steps: claim, plan, take the send key, send, record.

Exactly once, in short transactions per batch:

1. claim due enrollments (SKIP LOCKED), plan each one, and for every message to send
   insert its ledger row in review_requests under the unique send key
   '<enrollment>:<step>' -- BEFORE any provider is called -- and push the enrollment's
   next_step_at out by the send lease so no other worker picks it up;
2. outside any transaction, render the messages, each on a time and size budget (a
   template over budget fails its own step, with the reason, and nothing else);
3. per chunk of `journeys.in_flight_chunk` messages: mark the chunk in flight
   (committed), call the channel for each, then commit the chunk's outcomes and advance
   its enrollments before the next chunk starts.

A worker killed anywhere leaves either rows never marked in flight (sent later, for the
first time) or at most one chunk in flight (marked 'unknown' by whoever finds them after
the lease: never retried blindly; `blippsync messages unknown` lists them and `messages
release` sends again those known not to have reached the provider). The unique send key
means no second row, hence no second send.

A pass keeps claiming until nothing due is left, so an enrollment whose next step is due
at once (an SMS with delay 0 after an email) goes on in the same pass.
"""

from __future__ import annotations

import functools
import json
import logging
import secrets
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
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
from blippsync.journeys.delivery_status import StatusReport, record_delivery_status
from blippsync.journeys.hours import parse_window, retry_delay_seconds
from blippsync.journeys.planner import SMS_WINDOW_SECONDS, Outcome, Policy, Transition, plan
from blippsync.journeys.render import RenderContext, render_step
from blippsync.journeys.rules import HELD_STATUSES
from blippsync.journeys.templates import RenderBudget, TemplateProblem, check_message_config
from blippsync.journeys.unsubscribe import signing_key
from blippsync.retrying import RetryableFault, RetryPolicy, call_with_retries
from blippsync.tenancy import REASON as CROSS_TENANT
from blippsync.tenancy import refuse_cross_tenant

log = logging.getLogger(__name__)
RACE_SQLSTATES = ("40P01", "40001")  # deadlock detected, serialization failure
RECORD_RACE_POLICY = RetryPolicy(attempts=5, initial_seconds=0.05, jitter_seconds=0.05)


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
    channel: Channel
    render: tuple[Any, Any, Any, str, str]  # step, customer, business, send key, token
    message: Message | None = None  # None: not rendered (yet), or failed (`error` says why)
    error: str | None = None
    customer_id: uuid.UUID | None = None
    result: Any = None  # Delivery, DeliveryFailed or DeliveryUnknown


def execute_due_steps(db: Database, config: Config, plugins: Any, *,
                      batch_size: int | None = None, now: datetime | None = None,
                      max_batches: int | None = None) -> ExecutionSummary:
    """Run every due step (or max_batches batches); return what happened."""
    size = batch_size or config["journeys.execute_batch_size"]
    channels = _channels(config, plugins)
    _collect_delivery_reports(db, config, plugins)
    policy = Policy(sms_hours=parse_window(config["journeys.sms_hours"]),
                    email_hours=parse_window(config["journeys.email_hours"]),
                    sms_daily_cap=config["journeys.sms_daily_cap"],
                    lease_seconds=config["journeys.send_lease_seconds"])
    with db.begin() as conn:
        conn.execute(q.STOP_ARCHIVED_SEQUENCES)
    steps_cache: dict[uuid.UUID, tuple[dict[str, Any], list[Any]]] = {}
    total = ExecutionSummary()
    batches = 0
    seen: set[tuple[uuid.UUID, int]] = set()  # (enrollment, step) claimed in this pass
    while max_batches is None or batches < max_batches:
        at = now or datetime.now(UTC)
        summary, claimed = _run_batch(db, config, channels, policy, steps_cache, size, at)
        batches += 1
        total = total + summary
        # go on while something new was claimed: steps due at once run in this pass, and a
        # row claimed again at the same step (no progress possible) ends it
        if not claimed or claimed <= seen:
            break
        seen |= claimed
    return total


def _collect_delivery_reports(db: Database, config: Config, plugins: Any) -> None:
    """Outcomes plugins learned (bounces...) land before the pass, like status callbacks."""
    collect = getattr(plugins, "collect_delivery_reports", None)
    if collect is None:  # a plain mapping of channels (tests, embedders)
        return

    def report(*, provider_id: str, status: str, error_code: str | None = None,
               error: str | None = None) -> bool:
        return record_delivery_status(db, StatusReport(provider_id, status, error_code, error))

    collect(config, report)


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
               now: datetime) -> tuple[ExecutionSummary, set[tuple[uuid.UUID, int]]]:
    with db.begin() as conn:
        claimed, pending, counts = _claim_and_plan(conn, config, channels, policy, steps_cache,
                                                   size, now)
        unsubscribe_key = signing_key(conn) if claimed else b""
    if not claimed:
        return ExecutionSummary(), set()
    _render(config, pending, unsubscribe_key)  # outside any transaction, on a budget
    tally: Counter[str] = Counter()
    stops: Counter[str] = Counter()
    unrendered = [p for p in pending if p.message is None]
    sendable = [p for p in pending if p.message is not None]
    size_in_flight = max(1, config["journeys.in_flight_chunk"])  # the most a crash leaves unknown
    chunks = [unrendered] + [sendable[i:i + size_in_flight]
                             for i in range(0, len(sendable), size_in_flight)]
    for chunk in chunks:
        if not chunk:
            continue
        if chunk is not unrendered:
            _deliver(db, config, chunk, now)
        # this chunk's outcomes, before the next chunk is sent; the outcomes are known, so a
        # transaction that loses a deadlock to another worker is simply run again
        outcome_counts, chunk_stops = call_with_retries(
            functools.partial(_record_chunk, db, config, chunk, now), RECORD_RACE_POLICY,
            what="recording outcomes", log=log)
        tally.update(outcome_counts)
        stops.update(chunk_stops)
    counts["completed"] += stops.pop("completed", 0)
    for reason, n in stops.items():
        counts["stopped"][reason] += n
    summary = ExecutionSummary(claimed=len(claimed), sent=tally["sent"], failed=tally["failed"],
                               unknown=tally["unknown"] + counts["unknown"],
                               retrying=tally["retrying"], deferred=counts["deferred"],
                               completed=counts["completed"], stopped=dict(counts["stopped"]))
    return summary, claimed


def _record_chunk(db: Database, config: Config, chunk: list[_Pending], now: datetime
                  ) -> tuple[Counter[str], Counter[str]]:
    try:
        with db.begin() as conn:
            return _record(conn, config, chunk, now)
    except sa.exc.OperationalError as exc:
        state = getattr(exc.orig, "sqlstate", None)
        if state in RACE_SQLSTATES:
            raise RetryableFault(f"lost a race with another worker ({state})") from None
        raise


def _render(config: Config, pending: list[_Pending], unsubscribe_key: bytes) -> None:
    """Render each message on the budget; a template problem fails only its own step."""
    ctx = RenderContext.from_config(config, unsubscribe_key=unsubscribe_key)
    budget = RenderBudget(seconds=float(config["journeys.render_timeout_seconds"]),
                          max_chars=int(config["journeys.render_max_chars"]))
    for p in pending:
        step, customer, business, send_key, token = p.render
        problem = _config_problem(json.dumps(step.message_config or {}, sort_keys=True), budget)
        if problem:  # written past validation (the web app writes the table directly)
            p.error = f"step {step.step_order + 1} template: {problem}"
            continue
        try:
            p.message = render_step(ctx, step=step, customer=customer, business=business,
                                    send_key=send_key, token=token, ledger_id=p.ledger_id,
                                    budget=budget)
        except TemplateProblem as exc:
            p.error = f"step {step.step_order + 1} template: {exc}"


def _claim_and_plan(conn: sa.Connection, config: Config, channels: dict[str, Any],
                    policy: Policy, steps_cache: dict[uuid.UUID, tuple[dict[str, Any], list[Any]]],
                    size: int, now: datetime
                    ) -> tuple[set[tuple[uuid.UUID, int]], list[_Pending], Any]:
    active = [r.id for r in conn.execute(q.ACTIVE_SEQUENCE_IDS, {"held": list(HELD_STATUSES)})]
    counts: dict[str, Any] = {"deferred": 0, "completed": 0, "unknown": 0, "stopped": Counter()}
    if not active:
        return set(), [], counts
    rows = conn.execute(q.CLAIM_DUE, {"sequences": active, "now": now, "limit": size}).all()
    if not rows:
        return set(), [], counts
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
    for row in rows:
        settings, steps = steps_cache[row.sequence_id]
        customer = customers.get(row.customer_id)
        business = businesses.get(customer.business_id) if customer else None
        if customer is None or business is None:  # the customer row is gone (ON DELETE CASCADE)
            outcomes.append(Outcome(Transition(row.id, row.current_step, row.current_step,
                                               "stopped", "customer_deleted")))
            continue
        if customer.business_id != row.business_id:  # never message across businesses
            refuse_cross_tenant(conn, table="customer_enrollments", column="customer_id",
                                row_id=row.id, business_id=row.business_id,
                                referenced_id=customer.id,
                                referenced_business=customer.business_id, found_by="execution")
            outcomes.append(Outcome(Transition(row.id, row.current_step, row.current_step,
                                               "stopped", CROSS_TENANT)))
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
        if out.send.ledger_id is None:
            meta = {"send_key": send_key, "enrollment_id": str(row.id)}
            new_ledger.append((ledger_id, business.id, customer.id, row.id, row.sequence_id,
                               out.send.step, step.message_purpose, "scheduled", step.channel,
                               send_key, token, 0, json.dumps(meta), now))
        pending.append(_Pending(ledger_id=ledger_id, transition=t, steps=steps, settings=settings,
                                attempts=out.send.attempts, channel=channels[step.channel],
                                render=(step, customer, business, send_key, token),
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
    return {(r.id, r.current_step) for r in rows}, pending, counts


@functools.lru_cache(maxsize=1024)
def _config_problem(config_json: str, budget: RenderBudget) -> str | None:
    """Why a step's message_config cannot be used, checked once per distinct config."""
    try:
        check_message_config(json.loads(config_json), budget)
    except TemplateProblem as exc:
        return str(exc)
    return None


def _deliver(db: Database, config: Config, chunk: list[_Pending], now: datetime) -> None:
    """Mark the chunk in flight with what it will send (committed), then call the channel
    for each message of it."""
    with db.begin() as conn:
        metas = [json.dumps({"to": p.message.to, "subject": p.message.subject,
                             "body": p.message.body}) for p in chunk if p.message is not None]
        with driver_connection(conn).cursor() as cur:
            cur.execute(q.MARK_IN_FLIGHT, [now, [p.ledger_id for p in chunk], metas],
                        binary=True)
            marked = {r[0] for r in cur.fetchall()}
    for p in chunk:
        if p.ledger_id not in marked:  # someone else owns it now: do not touch
            p.message, p.error = None, "skip"
            continue
        p.attempts += 1
        try:
            # a chunk holds only rendered messages
            p.result = p.channel.send(cast(Message, p.message), config)
        except (DeliveryFailed, DeliveryUnknown) as exc:
            p.result = exc
        except Exception as exc:  # a plugin bug: it may have sent, so: unknown
            log.exception("channel %s failed unexpectedly", p.channel.name)
            p.result = DeliveryUnknown(f"channel {p.channel.name} raised "
                                       f"{type(exc).__name__}: {exc}")


def _record(conn: sa.Connection, config: Config, pending: list[_Pending],
            now: datetime) -> tuple[Counter[str], Counter[str]]:
    max_attempts = config["journeys.max_attempts"]
    backoff = config["journeys.retry_backoff_seconds"]
    ledger_rows: list[tuple[Any, ...]] = []
    transitions: list[Transition] = []
    opt_outs: list[uuid.UUID] = []
    suppressed: list[tuple[str, str, str]] = []  # (number, code, reason): opted out at the carrier
    sent = failed = unknown = retrying = 0
    stops: Counter[str] = Counter()
    for p in pending:
        if p.error == "skip":
            continue
        t = replace(p.transition, notes=list(p.transition.notes))  # a retry starts afresh
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
                if p.message is not None and p.message.kind == "sms":
                    suppressed.append((p.message.to, result.code or "opt_out", result.reason))
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
    # enrollments first, in the order a claim locks them (it then marks ledger rows): a
    # record and another worker's claim never wait on each other in a cycle
    raw = driver_connection(conn)
    _apply_transitions(raw, transitions)
    if ledger_rows:
        with raw.cursor() as cur:
            cur.execute(q.RECORD_OUTCOMES, [list(c) for c in zip(*ledger_rows, strict=True)],
                        binary=True)
    if opt_outs:
        conn.execute(q.OPT_OUT_SMS, {"ids": opt_outs, "now": now})
    if suppressed:
        phones, codes, reasons = (list(c) for c in zip(*suppressed, strict=True))
        conn.execute(q.SUPPRESS_NUMBERS, {"phones": phones, "codes": codes, "reasons": reasons})
    stops["completed"] = sum(t.status == "completed" for t in transitions)
    return Counter(sent=sent, failed=failed, unknown=unknown, retrying=retrying), stops


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
