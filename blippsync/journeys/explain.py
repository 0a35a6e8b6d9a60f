"""The story of a customer (or of one event): events, decisions with reasons, enrollments,
messages. "Why didn't my customer get a request?" answered in one command."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from blippsync.database import Database
from blippsync.errors import NotFoundError
from blippsync.ids import option_id
from blippsync.journeys.recipient_zone import recipient_zones
from blippsync.journeys.rules import HELD_STATUSES, REASONS

_CUSTOMER = sa.text("""
    SELECT c.id, c.business_id, b.name AS business, b.timezone, b.subscription_status, c.name,
           c.email, c.phone, c.mobile_phone, c.phones, c.other_emails, c.source, c.external_id,
           c.opted_out, c.archived, c.deleted_at,
           c.review_requests_allowed, c.sms_allowed, c.merged_into_id, c.created_at,
           c.email_opted_out, c.email_opted_out_at, c.timezone AS customer_timezone,
           sup.error_code || ' ' || sup.reason AS sms_suppressed
    FROM public.customers c JOIN public.businesses b ON b.id = c.business_id
    LEFT JOIN blippsync.sms_suppressions sup ON sup.phone = coalesce(c.mobile_phone, c.phone)
    WHERE c.id = :id
""")
_EVENTS = sa.text("""
    SELECT id, source, event_type, occurred_at, historical, routing_state, routed_at,
           routing_error, dedupe_key
    FROM public.trigger_events WHERE customer_id = :id ORDER BY occurred_at, created_at
""")
_EVENT = sa.text("""
    SELECT id, business_id, customer_id, external_customer_id, source, event_type, occurred_at,
           historical, routing_state, routed_at, routing_error, dedupe_key
    FROM public.trigger_events WHERE id = :id
""")
_DECISIONS = sa.text("""
    SELECT d.created_at, d.trigger_event_id, d.decision, d.reason, d.detail, d.enrollment_id,
           s.name AS sequence
    FROM public.enrollment_decisions d LEFT JOIN public.sequences s ON s.id = d.sequence_id
    WHERE (CAST(:customer AS uuid) IS NULL OR d.customer_id = :customer)
      AND (CAST(:event AS uuid) IS NULL OR d.trigger_event_id = :event)
    ORDER BY d.created_at
""")
_ENROLLMENTS = sa.text("""
    SELECT e.id, s.name AS sequence, s.status AS sequence_status, e.status, e.status_reason,
           e.current_step, e.enrolled_at, e.next_step_at, e.metadata, false AS archived
    FROM public.customer_enrollments e JOIN public.sequences s ON s.id = e.sequence_id
    WHERE e.customer_id = :id
    UNION ALL
    SELECT a.id, s.name, s.status, a.status, a.status_reason, a.current_step, a.enrolled_at,
           a.next_step_at, a.metadata, true
    FROM public.customer_enrollments_archive a LEFT JOIN public.sequences s ON s.id = a.sequence_id
    WHERE a.customer_id = :id
    ORDER BY enrolled_at
""")
_MESSAGES = sa.text("""
    SELECT r.created_at, r.channel, r.status, r.purpose, r.step_order, r.sent_at, r.attempts,
           r.last_error, r.error_code, r.clicked_at, r.send_key, r.metadata ->> 'to' AS sent_to,
           r.metadata ->> 'subject' AS subject, r.metadata ->> 'provider_id' AS provider_id,
           r.metadata ->> 'channel_plugin' AS via
    FROM public.review_requests r
    WHERE r.customer_id = :id ORDER BY r.created_at
""")

_FEEDBACK = sa.text("""
    SELECT f.created_at, f.rating, f.feedback, f.source, t.name AS tech
    FROM public.private_feedback f
    LEFT JOIN public.techs t ON t.id = f.tech_id
    WHERE f.customer_id = :id ORDER BY f.created_at
""")


def explain_customer(db: Database, customer_id: str) -> dict[str, Any]:
    key = option_id(customer_id, "--customer")
    with db.connect() as conn:
        customer = conn.execute(_CUSTOMER, {"id": key}).mappings().first()
        if customer is None:
            raise NotFoundError(f"no customer with id {key}")
        zones = recipient_zones(customer["timezone"], customer["customer_timezone"],
                                customer["phone"])
        return {
            "customer": dict(customer),
            "quiet_hours": {"zones": list(zones.all), "why": zones.describe()},
            "events": [dict(r) for r in conn.execute(_EVENTS, {"id": key}).mappings()],
            "decisions": [dict(r) for r in conn.execute(
                _DECISIONS, {"customer": key, "event": None}).mappings()],
            "enrollments": [dict(r) for r in conn.execute(_ENROLLMENTS, {"id": key}).mappings()],
            "messages": [dict(r) for r in conn.execute(_MESSAGES, {"id": key}).mappings()],
            "feedback": [dict(r) for r in conn.execute(_FEEDBACK, {"id": key}).mappings()],
        }


def explain_event(db: Database, event_id: str) -> dict[str, Any]:
    key = option_id(event_id, "--event")
    with db.connect() as conn:
        event = conn.execute(_EVENT, {"id": key}).mappings().first()
        if event is None:
            raise NotFoundError(f"no trigger event with id {key} (routed events are deleted "
                                "once older than journeys.event_retention_days; the "
                                "customer's decisions remain: explain --customer)")
        decisions = [dict(r) for r in conn.execute(
            _DECISIONS, {"customer": None, "event": key}).mappings()]
        enrollment_ids = {str(d["enrollment_id"]) for d in decisions if d["enrollment_id"]}
        enrollments, messages = [], []
        if event["customer_id"]:
            enrollments = [dict(r) for r in conn.execute(
                _ENROLLMENTS, {"id": event["customer_id"]}).mappings()
                if str(r["id"]) in enrollment_ids]
            messages = [dict(r) for r in conn.execute(
                _MESSAGES, {"id": event["customer_id"]}).mappings()
                if (r["send_key"] or "").split(":")[0] in enrollment_ids]
        return {"event": dict(event), "decisions": decisions, "enrollments": enrollments,
                "messages": messages}


def story_lines(report: dict[str, Any]) -> list[str]:
    """The report as sentences, oldest first."""
    lines: list[str] = []
    c = report.get("customer")
    if c:
        flags = [f for f, on in (("opted out", c["opted_out"]), ("archived", c["archived"]),
                                 ("deleted", c["deleted_at"] is not None),
                                 ("no review requests", not c["review_requests_allowed"]),
                                 ("no SMS", c["sms_allowed"] is False),
                                 ("unsubscribed from email", c["email_opted_out"]),
                                 (f"SMS refused by the carrier: {c['sms_suppressed']}",
                                  c["sms_suppressed"]),
                                 (f"merged into {c['merged_into_id']}", c["merged_into_id"]))
                 if on]
        mobile = f" (SMS to mobile {c['mobile_phone']})" \
            if c["mobile_phone"] and c["mobile_phone"] != c["phone"] else ""
        lines.append(f"Customer {c['name'] or '(no name)'} <{c['email'] or 'no email'}> "
                     f"{c['phone'] or 'no phone'}{mobile} of {c['business']} "
                     f"(subscription {c['subscription_status']}, {c['timezone']})"
                     + (f" [{', '.join(flags)}]" if flags else ""))
        q = report["quiet_hours"]
        lines.append(f"  quiet hours count in {', '.join(q['zones'])}: {q['why']}, the stricter "
                     "of them wins")
    ev = report.get("event")
    if ev:
        lines.append(f"Event {ev['id']}: {ev['source']}/{ev['event_type']} at "
                     f"{ev['occurred_at']:%Y-%m-%d %H:%M %Z}, {ev['routing_state']}"
                     + (" (historical)" if ev["historical"] else ""))
    for e in report.get("events", []):
        lines.append(f"  event {e['occurred_at']:%Y-%m-%d %H:%M} {e['source']}/{e['event_type']}"
                     f" -> {e['routing_state']}" + (" (historical: never enrolls)"
                                                    if e["historical"] else "") + f" [{e['id']}]")
    for d in report.get("decisions", []):
        target = f"sequence {d['sequence']!r}" if d["sequence"] else "no sequence"
        why = d["detail"] or REASONS.get(d["reason"], d["reason"])
        verb = "ENROLLED in" if d["decision"] == "enrolled" else "skipped for"
        lines.append(f"  decision {d['created_at']:%Y-%m-%d %H:%M}: {verb} {target}"
                     + ("" if d["decision"] == "enrolled" else f": {d['reason']} ({why})"))
    for e in report.get("enrollments", []):
        where = "archived " if e["archived"] else ""
        nxt = f", next step at {e['next_step_at']:%Y-%m-%d %H:%M %Z}" \
            if e["status"] == "active" and e["next_step_at"] else ""
        reason = f" ({e['status_reason']})" if e["status_reason"] else ""
        paused = " [sequence paused: waiting]" if e["sequence_status"] == "paused" else ""
        billing = (c or {}).get("subscription_status")
        if e["status"] == "active" and billing in HELD_STATUSES:
            paused += f" [subscription {billing}: waiting until it is active again]"
        lines.append(f"  {where}enrollment in {e['sequence']!r}: {e['status']}{reason}, "
                     f"at step {e['current_step'] + 1}{nxt}{paused}")
        for note in (e["metadata"] or {}).get("notes", []):
            lines.append(f"    {note}")
    for m in report.get("messages", []):
        when = m["sent_at"] or m["created_at"]
        extra = f": {m['last_error']}" if m["last_error"] and m["status"] != "sent" else ""
        click = f", review link clicked {m['clicked_at']:%Y-%m-%d %H:%M}" if m["clicked_at"] else ""
        outbox = " to the outbox (a file, not delivered)" if m["via"] == "outbox" else ""
        lines.append(f"  message {when:%Y-%m-%d %H:%M} {m['channel']} ({m['purpose'] or '-'}) "
                     f"to {m['sent_to'] or '?'}: {m['status']}{outbox}{extra}{click}")
    for f in report.get("feedback", []):
        about = f" about {f['tech']}" if f["tech"] else ""
        said = f": {f['feedback']!r}" if f["feedback"] else ""
        lines.append(f"  feedback {f['created_at']:%Y-%m-%d %H:%M} via {f['source']}: "
                     f"{f['rating']} of 5 stars{about}{said} (stops journeys begun before it)")
    if report.get("customer") and not report.get("decisions") and not report.get("events"):
        lines.append("  no trigger events for this customer yet: nothing to route")
    return lines
