"""Helpers for the journey tests: rows inserted with plain SQL, sequences applied for real."""

from __future__ import annotations

import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from blippsync.config import Config, load_config
from blippsync.database import Database
from blippsync.journeys.apply import apply_sequence_file
from blippsync.journeys.definitions import SequenceFile, parse_sequence

REVIEW_URL = "https://g.page/r/demo-plumbing/review"


def journey_config(tmp_path: Path, database_url: str, **overrides: Any) -> Config:
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "{database_url}"\n'
                   f'[channels]\noutbox_dir = "{tmp_path / "outbox"}"\n')
    config = load_config(cfg, environ={})
    return config.with_values(**overrides) if overrides else config


def make_business(db: Database, *, timezone: str = "America/New_York",
                  subscription_status: str = "active", name: str | None = None) -> uuid.UUID:
    with db.begin() as conn:
        return conn.execute(sa.text(
            "INSERT INTO public.businesses (name, created_by, timezone, subscription_status, "
            "google_review_url) VALUES (:name, 'owner@example.com', :tz, :status, :url) "
            "RETURNING id"), {"name": name or f"Biz {uuid.uuid4().hex[:6]}", "tz": timezone,
                              "status": subscription_status, "url": REVIEW_URL}).scalar_one()


def make_customer(db: Database, business_id: uuid.UUID, **fields: Any) -> uuid.UUID:
    values = {"name": "Ada Lovelace", "email": f"{uuid.uuid4().hex[:8]}@example.com",
              "phone": "+15555550123", "opted_out": False, "archived": False,
              "deleted_at": None, "review_requests_allowed": True, "sms_allowed": None,
              **fields}
    with db.begin() as conn:
        return conn.execute(sa.text(
            "INSERT INTO public.customers (business_id, name, email, phone, opted_out, archived, "
            "deleted_at, review_requests_allowed, sms_allowed, source, external_id) VALUES "
            "(:b, :name, :email, :phone, :opted_out, :archived, :deleted_at, "
            ":review_requests_allowed, :sms_allowed, 'csv', :ext) RETURNING id"),
            {"b": business_id, "ext": uuid.uuid4().hex, **values}).scalar_one()


def add_event(db: Database, business_id: uuid.UUID, customer_id: uuid.UUID | None, *,
              source: str = "csv", event_type: str = "job_completed",
              historical: bool = False) -> uuid.UUID:
    with db.begin() as conn:
        return conn.execute(sa.text(
            "INSERT INTO public.trigger_events (business_id, source, event_type, customer_id, "
            "occurred_at, dedupe_key, historical, routing_state) VALUES "
            "(:b, :source, :type, :c, now(), :key, :hist, 'pending') RETURNING id"),
            {"b": business_id, "source": source, "type": event_type, "c": customer_id,
             "key": uuid.uuid4().hex, "hist": historical}).scalar_one()


def sequence(name: str = "Thanks and review", *, steps: list[dict[str, Any]] | None = None,
             settings: dict[str, Any] | None = None, status: str = "active",
             trigger_source: str = "csv", trigger_event_type: str = "job_completed") -> dict:
    return {"name": name, "trigger_source": trigger_source,
            "trigger_event_type": trigger_event_type, "status": status,
            "settings": settings or {},
            "steps": steps if steps is not None else [
                {"type": "sms", "delay_minutes": 0, "purpose": "thank_you",
                 "text": "Thanks {{ customer.first_name }} from {{ business.name }}!"},
                {"type": "email", "delay_minutes": 60, "purpose": "review",
                 "subject": "How did we do, {{ customer.first_name }}?",
                 "body": "Leave us a review: {{ review_link }}"}]}


def apply(db: Database, business_id: uuid.UUID, *specs: dict) -> list[uuid.UUID]:
    file = SequenceFile(path=Path("test.toml"), business={"id": str(business_id)},
                        sequences=tuple(parse_sequence(s, "test.toml: sequences[0]")
                                        for s in specs))
    return [s.id for s in apply_sequence_file(db, file).sequences]


def rows(db: Database, sql: str, **params: Any) -> list[Any]:
    with db.connect() as conn:
        return conn.execute(sa.text(sql), params).all()


def noon_utc(year: int = 2025, month: int = 6, day: int = 10, hour: int = 16) -> datetime:
    return datetime(year, month, day, hour, 0, tzinfo=UTC)


SEED_DUE_SQL = """
    WITH c AS (
        INSERT INTO public.customers (business_id, name, email, phone, source, external_id)
        SELECT :b, 'Customer ' || g, 'c' || g || '@example.com',
               '+1555' || lpad(g::text, 7, '0'), 'csv', 'ext-' || g
        FROM generate_series(1, :n) AS g
        RETURNING id
    )
    INSERT INTO public.customer_enrollments (sequence_id, customer_id, enrolled_at, next_step_at)
    SELECT :s, c.id, :now, :now FROM c
"""


def seed_due(db: Database, business_id: uuid.UUID, sequence_id: uuid.UUID, n: int,
             now: datetime) -> None:
    """n customers, each with an enrollment due now (plain SQL: fast setup)."""
    with db.begin() as conn:
        conn.execute(sa.text(SEED_DUE_SQL), {"b": business_id, "s": sequence_id, "n": n,
                                             "now": now})


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Run the `blippsync` command as a user would, in a subprocess."""
    return subprocess.run([sys.executable, "-m", "blippsync", *args], env=env, text=True,
                          capture_output=True, timeout=120)
