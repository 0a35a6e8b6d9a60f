"""A small but complete world for the console tests, written with plain SQL: two
businesses, connections in every state, sync runs over several days, a journey with
enrollments, events, decisions and messages. Secrets are planted where a careless page
would show them (token columns, an error quoting a token) so tests can look for them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from blippsync.database import Database

PLANTED_SECRETS = ("qbo-access-CIPHERTEXT", "qbo-refresh-CIPHERTEXT", "plugin-CREDENTIALS",
                   "s3cr3t-t0ken-in-error")


@dataclass(frozen=True)
class World:
    acme: uuid.UUID
    bright: uuid.UUID
    zoe: uuid.UUID           # Acme's customer with the richest story
    sequence: uuid.UUID


def seed(db: Database) -> World:
    now = datetime.now(UTC)
    with db.begin() as conn:
        def one(sql: str, **params: object) -> uuid.UUID:
            return conn.execute(sa.text(sql), params).scalar_one()

        acme = one("INSERT INTO public.businesses (name, created_by, timezone, "
                   "subscription_status) VALUES ('Acme Plumbing', 'owner@acme.test', "
                   "'America/New_York', 'active') RETURNING id")
        bright = one("INSERT INTO public.businesses (name, created_by, timezone) VALUES "
                     "('Bright Cleaners', 'owner@bright.test', 'Europe/London') RETURNING id")
        conn.execute(sa.text(
            "INSERT INTO public.integrations_quickbooks (business_id, access_token, "
            "refresh_token, realm_id, company_name) VALUES (:b, :a, :r, '9130', 'Acme')"),
            {"b": acme, "a": PLANTED_SECRETS[0], "r": PLANTED_SECRETS[1]})
        qbo = one("INSERT INTO public.connections (business_id, connector, account_id, status, "
                  "last_sync_at, last_success_at, cursor, cursor_updated_at, next_sync_at) "
                  "VALUES (:b, 'quickbooks', '9130', 'connected', :s, :s, '{}', :c, :n) "
                  "RETURNING id", b=acme, s=now - timedelta(hours=1),
                  c=now - timedelta(hours=2), n=now + timedelta(minutes=14))
        # a daemon at work: its heartbeat, the QuickBooks connection leased, a periodic task
        conn.execute(sa.text(
            "INSERT INTO blippsync.daemons (id, hostname, pid, version) VALUES "
            "('host-a-4242-x1', 'host-a', 4242, '0.1.0'), ('gone-1-y', 'host-b', 1, '0.1.0')"))
        conn.execute(sa.text("UPDATE blippsync.daemons SET stopped_at = now() "
                             "WHERE id = 'gone-1-y'"))
        conn.execute(sa.text(
            "UPDATE public.connections SET lease_owner = 'host-a-4242-x1', "
            "lease_expires_at = now() + interval '1 minute' WHERE id = :c"), {"c": qbo})
        conn.execute(sa.text(
            "INSERT INTO blippsync.daemon_tasks (name, last_started_at, last_finished_at, "
            "lease_owner, lease_expires_at) VALUES ('retention', now() - interval '1 day', "
            "now() - interval '1 day', NULL, NULL)"))
        one("INSERT INTO public.connections (business_id, connector, account_id, status, "
            "status_reason, last_success_at, last_sync_at) VALUES (:b, 'jobber', 'JOB-1', "
            "'token_expired', 'refresh token revoked by the user', :s, :s) RETURNING id",
            b=acme, s=now - timedelta(days=3))
        one("INSERT INTO public.connections (business_id, connector, status, credentials, "
            "consecutive_failures, last_success_at, last_error, last_error_at, created_at, "
            "last_sync_at) VALUES (:b, 'csv', 'connected', :cred, 5, :s, :e, :s2, :s, :s2) "
            "RETURNING id",
            b=bright, cred=PLANTED_SECRETS[2], s=now - timedelta(days=3),
            e=f"upstream said 401 for access_token={PLANTED_SECRETS[3]}",
            s2=now - timedelta(minutes=5))
        # sync runs: one a day for six days (the fourth failed), two today
        runs = ((5, 12.0, "succeeded"), (4, 8.5, "succeeded"), (3, 30.0, "succeeded"),
                (2, 3.0, "failed"), (1, 9.0, "succeeded"), (0, 7.0, "succeeded"),
                (0, 6.0, "succeeded"))
        for i, (days_ago, seconds, status) in enumerate(runs):
            started = now - timedelta(days=days_ago, minutes=60 - 5 * i)
            conn.execute(sa.text(
                "INSERT INTO public.sync_runs (business_id, connection_id, connector, status, "
                "started_at, finished_at, duration_ms, customers_created, events_emitted, "
                "error) VALUES (:b, :c, 'quickbooks', :st, :s, :f, :d, 3, 2, :e)"),
                {"b": acme, "c": qbo, "st": status, "s": started,
                 "f": started + timedelta(seconds=seconds), "d": int(seconds * 1000),
                 "e": "QuickBooks answered 503" if status == "failed" else None})
        sequence = one("INSERT INTO public.sequences (business_id, name, trigger_source, "
                       "trigger_event_type, status) VALUES (:b, 'Thank you, then review', "
                       "'quickbooks', 'invoice_paid', 'active') RETURNING id", b=acme)
        conn.execute(sa.text(
            "INSERT INTO public.sequence_steps (sequence_id, step_order, step_type, "
            "delay_minutes, message_purpose, channel, message_config) VALUES "
            "(:s, 0, 'sms', 120, 'thank_you', 'sms', '{\"text\": \"Thanks!\"}'), "
            "(:s, 1, 'email', 1440, 'review', 'email', '{\"subject\": \"How did we do?\"}')"),
            {"s": sequence})
        one("INSERT INTO public.sequences (business_id, name, trigger_source, "
            "trigger_event_type, status) VALUES (:b, 'Win back', 'jobber', 'job_completed', "
            "'draft') RETURNING id", b=acme)
        people = [("Zoe Quinn", "zoe@example.com", "+12125550101", "QB-17"),
                  ("Yann Tiersen", "yann@example.com", "+12125550102", "QB-18"),
                  ("Xavier Dolan", None, "+12125550103", "QB-19"),
                  ("Wanda Sykes", "wanda@example.com", None, "QB-20")]
        ids = [one("INSERT INTO public.customers (business_id, name, email, phone, source, "
                   "external_id) VALUES (:b, :n, :e, :p, 'quickbooks', :x) RETURNING id",
                   b=acme, n=n, e=e, p=p, x=x) for n, e, p, x in people]
        one("INSERT INTO public.customers (business_id, name, email, source, external_id) "
            "VALUES (:b, 'Zoe Other', 'zoe@bright.test', 'csv', 'R-1') RETURNING id", b=bright)
        zoe = ids[0]
        for i, customer in enumerate(ids[:3]):
            event = one("INSERT INTO public.trigger_events (business_id, connection_id, source, "
                        "event_type, customer_id, occurred_at, dedupe_key, routing_state, "
                        "routed_at) VALUES (:b, :c, 'quickbooks', 'invoice_paid', :cu, :o, :k, "
                        "'routed', :o) RETURNING id", b=acme, c=qbo, cu=customer,
                        o=now - timedelta(days=1, hours=i), k=f"quickbooks:9130:invoice:{i}:paid")
            enrollment = one("INSERT INTO public.customer_enrollments (sequence_id, customer_id, "
                             "current_step, status, next_step_at) VALUES (:s, :c, 1, 'active', "
                             ":n) RETURNING id", s=sequence, c=customer,
                             n=now + timedelta(hours=i + 1))
            conn.execute(sa.text(
                "INSERT INTO public.enrollment_decisions (business_id, trigger_event_id, "
                "customer_id, sequence_id, enrollment_id, decision, reason) VALUES "
                "(:b, :e, :c, :s, :en, 'enrolled', 'enrolled')"),
                {"b": acme, "e": event, "c": customer, "s": sequence, "en": enrollment})
            conn.execute(sa.text(
                "INSERT INTO public.review_requests (business_id, customer_id, enrollment_id, "
                "sequence_id, step_order, purpose, status, channel, sent_at, send_key, "
                "last_error, metadata, created_at) VALUES (:b, :c, :en, :s, 0, 'thank_you', "
                ":st, 'sms', :t, :k, :err, :m, :t)"),
                {"b": acme, "c": customer, "en": enrollment, "s": sequence,
                 "st": ("sent", "failed", "unknown")[i], "t": now - timedelta(hours=20 - i),
                 "k": f"{enrollment}:0", "m": '{"to": "+12125550101"}',
                 "err": "carrier rejected the number" if i == 1 else None})
        # Zoe's second event arrived while she was active: skipped, with its reason
        event = one("INSERT INTO public.trigger_events (business_id, source, event_type, "
                    "customer_id, occurred_at, dedupe_key, routing_state) VALUES (:b, "
                    "'quickbooks', 'invoice_paid', :c, :o, 'quickbooks:9130:invoice:9:paid', "
                    "'routed') RETURNING id", b=acme, c=zoe, o=now - timedelta(hours=3))
        conn.execute(sa.text(
            "INSERT INTO public.enrollment_decisions (business_id, trigger_event_id, customer_id, "
            "sequence_id, decision, reason, detail) VALUES (:b, :e, :c, :s, 'skipped', "
            "'already_active', 'already in this journey')"),
            {"b": acme, "e": event, "c": zoe, "s": sequence})
        # one event still waiting to be routed
        conn.execute(sa.text(
            "INSERT INTO public.trigger_events (business_id, source, event_type, customer_id, "
            "occurred_at, dedupe_key) VALUES (:b, 'quickbooks', 'invoice_paid', :c, now(), "
            "'quickbooks:9130:invoice:10:paid')"), {"b": acme, "c": ids[3]})
    return World(acme=acme, bright=bright, zoe=zoe, sequence=sequence)
