"""Retention of sync_runs and trigger_events against a real PostgreSQL: rows written by SQL
(old and new, no-op and changed, failed, running, a connection's latest run, referenced
rows, pending events), one sweep, then exactly what must remain is asserted."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from blippsync.businesses import add_business
from blippsync.config import Config, load_config
from blippsync.connections import ensure_connection
from blippsync.daemon.jobs import Jobs
from blippsync.database import Database
from blippsync.errors import ConfigError, NotFoundError
from blippsync.journeys.explain import explain_customer, explain_event, story_lines
from blippsync.journeys.retention import delete_old_events
from blippsync.metrics import DaemonMetrics
from blippsync.plugins import load_plugins
from blippsync.records import Checkpoint, CustomerRecord
from blippsync.run_retention import NOOP_SWEEP, delete_old_runs
from blippsync.sync import SyncOptions, sync_connection

NOW = datetime.now(UTC).replace(microsecond=0)
# what the sync engine writes in details for a pass with nothing to report
QUIET = {"problems": [], "conflicts": 0, "merged": 0, "joined": 0}


def _one(db: Database, sql: str, **params: Any) -> Any:
    with db.begin() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def _business(db: Database, name: str = "Acme") -> uuid.UUID:
    return _one(db, "INSERT INTO public.businesses (name, created_by) VALUES (:n, :e) "
                "RETURNING id", n=name, e=f"{name.lower()}@test.example")


def _connection(db: Database, business: uuid.UUID, connector: str) -> uuid.UUID:
    return _one(db, "INSERT INTO public.connections (business_id, connector) VALUES (:b, :c) "
                "RETURNING id", b=business, c=connector)


def _run(db: Database, business: uuid.UUID, connection: uuid.UUID | None, age: timedelta, *,
         status: str = "succeeded", details: dict[str, Any] | None = None,
         error: str | None = None, full: bool = False, **counts: int) -> uuid.UUID:
    started = NOW - age
    columns = ", ".join(counts)
    values = ", ".join(f":{c}" for c in counts)
    return _one(db, f"""
        INSERT INTO public.sync_runs (business_id, connection_id, connector, status, full_sync,
                                      started_at, finished_at, error, details
                                      {', ' + columns if counts else ''})
        VALUES (:b, :conn, 'quickbooks', :status, :full, :started,
                CASE WHEN :status = 'running' THEN NULL ELSE CAST(:started AS timestamptz) END,
                :error, CAST(:details AS jsonb) {', ' + values if counts else ''})
        RETURNING id""", b=business, conn=connection, status=status, full=full,
                started=started, error=error,
                details=json.dumps(QUIET if details is None else details), **counts)


def _conflict(db: Database, business: uuid.UUID, run: uuid.UUID, external_id: str) -> None:
    _one(db, "INSERT INTO public.identity_conflicts (business_id, source, external_id, field, "
         "value, reason, sync_run_id) VALUES (:b, 'quickbooks', :x, 'email', :x, "
         "'email_taken', :r) RETURNING id", b=business, x=external_id, r=run)


def _remaining_runs(db: Database, labels: dict[str, uuid.UUID]) -> set[str]:
    with db.connect() as conn:
        ids = {r.id for r in conn.execute(sa.text("SELECT id FROM public.sync_runs"))}
    return {label for label, run in labels.items() if run in ids}


def _settings(config: Config, **values: Any) -> Config:
    return config.with_values(**values)


DAY = timedelta(days=1)


# --- sync_runs --------------------------------------------------------------------------


def test_run_retention_deletes_old_noops_early_and_everything_else_after_a_year(
        db: Database, config: Config) -> None:
    assert (config["sync.noop_run_retention_days"], config["sync.run_retention_days"]) == (7, 365)
    b = _business(db)
    qbo, jobber, old_csv = (_connection(db, b, c) for c in ("quickbooks", "jobber", "csv"))
    runs = {
        # no-op passes: gone after 7 days, not before
        "noop 8 days": _run(db, b, qbo, 8 * DAY),
        "noop 6 days": _run(db, b, qbo, 6 * DAY),
        "noop 7 days + 1 min": _run(db, b, qbo, 7 * DAY + timedelta(minutes=1)),
        "noop 7 days - 1 min": _run(db, b, qbo, 7 * DAY - timedelta(minutes=1)),
        "noop empty details": _run(db, b, qbo, 9 * DAY, details={}),
        "noop with duplicates": _run(db, b, qbo, 9 * DAY, events_duplicate=3,
                                     customers_unchanged=40),
        # changed something, failed, notable: kept for a year, not more
        "created 30 days": _run(db, b, qbo, 30 * DAY, customers_created=1),
        "updated 30 days": _run(db, b, qbo, 30 * DAY, customers_updated=1),
        "rejected 30 days": _run(db, b, qbo, 30 * DAY, customers_rejected=1),
        "emitted 30 days": _run(db, b, qbo, 30 * DAY, events_emitted=1),
        "historical 30 days": _run(db, b, qbo, 30 * DAY, events_historical=1),
        "conflict detail 30 days": _run(db, b, qbo, 30 * DAY, details={**QUIET, "conflicts": 1}),
        "merge detail 30 days": _run(db, b, qbo, 30 * DAY, details={**QUIET, "merged": 2}),
        "join detail 30 days": _run(db, b, qbo, 30 * DAY, details={**QUIET, "joined": 1}),
        "problem 30 days": _run(db, b, qbo, 30 * DAY,
                                details={**QUIET, "problems": [{"reason": "bad phone"}]}),
        "unknown detail 30 days": _run(db, b, qbo, 30 * DAY, details={**QUIET, "new": 1}),
        "failed 30 days": _run(db, b, qbo, 30 * DAY, status="failed", error="HTTP 500"),
        "interrupted 30 days": _run(db, b, qbo, 30 * DAY, status="interrupted"),
        "full noop 30 days": _run(db, b, qbo, 30 * DAY, full=True),
        "created 364 days": _run(db, b, qbo, 364 * DAY, customers_created=2),
        "created 366 days": _run(db, b, qbo, 366 * DAY, customers_created=2),
        "failed 366 days": _run(db, b, qbo, 366 * DAY, status="failed", error="boom"),
        "noop 366 days": _run(db, b, qbo, 366 * DAY),
        # never deleted
        "running 400 days": _run(db, b, qbo, 400 * DAY, status="running"),
        "noop referenced 30 days": _run(db, b, qbo, 30 * DAY),
        "created referenced 400 days": _run(db, b, qbo, 400 * DAY, customers_created=1),
        "qbo latest": _run(db, b, qbo, timedelta(hours=1)),
        # a connection that stopped syncing: its last run stays, however old and dull
        "jobber noop 20 days": _run(db, b, jobber, 20 * DAY),
        "jobber latest noop 10 days": _run(db, b, jobber, 10 * DAY),
        "csv latest failed 500 days": _run(db, b, old_csv, 500 * DAY, status="failed",
                                           error="x"),
        # a deleted connection's runs (connection_id NULL) follow the windows alone
        "orphan noop 8 days": _run(db, b, None, 8 * DAY),
        "orphan noop 3 days": _run(db, b, None, 3 * DAY),
        "orphan failed 366 days": _run(db, b, None, 366 * DAY, status="failed", error="y"),
    }
    _conflict(db, b, runs["noop referenced 30 days"], "c1")
    _conflict(db, b, runs["created referenced 400 days"], "c2")

    done = delete_old_runs(db, config, now=NOW, chunk_rows=4)

    noop_gone = {"noop 8 days", "noop 7 days + 1 min", "noop empty details",
                 "noop with duplicates", "jobber noop 20 days", "orphan noop 8 days",
                 "noop 366 days"}
    old_gone = {"created 366 days", "failed 366 days", "orphan failed 366 days"}
    assert _remaining_runs(db, runs) == set(runs) - noop_gone - old_gone
    assert (done.noop_deleted, done.old_deleted) == (len(noop_gone), len(old_gone))
    assert _one(db, "SELECT swept_until FROM blippsync.retention_sweeps WHERE name = :n",
                n=NOOP_SWEEP) == NOW - 7 * DAY
    # the conflicts still name their runs
    assert _one(db, "SELECT count(sync_run_id) FROM public.identity_conflicts") == 2

    # a second sweep the same day finds nothing more
    again = delete_old_runs(db, config, now=NOW, chunk_rows=4)
    assert (again.noop_deleted, again.old_deleted) == (0, 0)


def test_other_windows_and_zero_keep(db: Database, config: Config) -> None:
    b = _business(db)
    qbo = _connection(db, b, "quickbooks")
    runs = {"noop 2 days": _run(db, b, qbo, 2 * DAY),
            "noop 40 days": _run(db, b, qbo, 40 * DAY),
            "failed 40 days": _run(db, b, qbo, 40 * DAY, status="failed", error="e"),
            "failed 20 days": _run(db, b, qbo, 20 * DAY, status="failed", error="e"),
            "latest": _run(db, b, qbo, timedelta(minutes=5))}
    forever = _settings(config, sync__noop_run_retention_days=0, sync__run_retention_days=0)
    assert delete_old_runs(db, forever, now=NOW).noop_deleted == 0
    assert _remaining_runs(db, runs) == set(runs)

    only_noops = _settings(config, sync__noop_run_retention_days=1, sync__run_retention_days=0)
    assert delete_old_runs(db, only_noops, now=NOW).noop_deleted == 2
    assert _remaining_runs(db, runs) == {"failed 40 days", "failed 20 days", "latest"}

    month = _settings(config, sync__run_retention_days=30)
    assert delete_old_runs(db, month, now=NOW).old_deleted == 1
    assert _remaining_runs(db, runs) == {"failed 20 days", "latest"}


def test_the_noop_sweep_walks_ties_in_chunks_then_resumes_where_it_stopped(
        db: Database, config: Config) -> None:
    b = _business(db)
    qbo = _connection(db, b, "quickbooks")
    # eleven no-op passes started at the very same instant, more than a chunk of them
    tied = [_run(db, b, qbo, 10 * DAY) for _ in range(11)]
    latest = _run(db, b, qbo, timedelta(minutes=1))
    assert delete_old_runs(db, config, now=NOW, chunk_rows=3).noop_deleted == 11
    assert _remaining_runs(db, {"latest": latest, **{str(t): t for t in tied}}) == {"latest"}

    # a no-op run dated before the last sweep's cutoff (its connection's latest back then,
    # say) is not looked at again by the no-op rule: the year-long rule takes it
    passed = _run(db, b, qbo, 9 * DAY)
    assert delete_old_runs(db, config, now=NOW + DAY).noop_deleted == 0
    assert _remaining_runs(db, {"passed": passed}) == {"passed"}
    later = delete_old_runs(db, config, now=NOW + 360 * DAY)
    assert later.old_deleted == 1
    assert _remaining_runs(db, {"passed": passed, "latest": latest}) == {"latest"}


def test_what_a_real_pass_that_changed_nothing_writes_is_recognised_as_no_op(
        db: Database, config: Config, tiny_plugin: Path) -> None:
    """Guards the no-op rule against drift in what the sync engine writes."""
    tiny = load_plugins().connector("tiny")
    business = add_business(db, name="Tiny Co", owner_email="o@tiny.test", timezone="UTC")
    with db.begin() as conn:
        connection = ensure_connection(conn, business, "tiny")
    record = CustomerRecord(external_id="c1", name="Ann Lee", email="ann@tiny.test")

    def sync(records: list[Any]) -> uuid.UUID:
        summary = sync_connection(db, config, connection, tiny, SyncOptions(
            options={"records": records}, now=NOW))
        assert summary.ok, summary.error
        assert summary.run_id is not None
        return summary.run_id

    changed = sync([record, Checkpoint({"position": 1})])
    unchanged = sync([record, Checkpoint({"position": 2})])
    empty = sync([Checkpoint({"position": 3})])
    latest = sync([Checkpoint({"position": 4})])
    _one(db, "UPDATE public.sync_runs SET started_at = started_at - interval '30 days' "
         "WHERE id <> :latest RETURNING 1", latest=latest)

    done = delete_old_runs(db, config, now=datetime.now(UTC))
    assert done.noop_deleted == 2
    labels = {"changed": changed, "unchanged": unchanged, "empty": empty, "latest": latest}
    assert _remaining_runs(db, labels) == {"changed", "latest"}


# --- trigger_events ---------------------------------------------------------------------


def _event(db: Database, business: uuid.UUID, customer: uuid.UUID | None, key: str,
           age: timedelta, state: str) -> uuid.UUID:
    return _one(db, """
        INSERT INTO public.trigger_events (business_id, source, event_type, customer_id,
                                           occurred_at, dedupe_key, historical, routing_state,
                                           routed_at, created_at)
        VALUES (:b, 'quickbooks', 'invoice_paid', :c, :at, :key, :state = 'historical', :state,
                CASE WHEN :state IN ('routed', 'historical') THEN CAST(:at AS timestamptz) END,
                :at)
        RETURNING id""", b=business, c=customer, at=NOW - age, key=key, state=state)


def test_event_retention_deletes_finished_events_past_the_window_and_nothing_else(
        db: Database, config: Config) -> None:
    assert config["journeys.event_retention_days"] == 400
    b = _business(db)
    customer = _one(db, "INSERT INTO public.customers (business_id, name, email) VALUES "
                    "(:b, 'Ann Lee', 'ann@test.example') RETURNING id", b=b)
    events = {
        "routed 401 days": _event(db, b, customer, "k1", 401 * DAY, "routed"),
        "historical 401 days": _event(db, b, None, "k2", 401 * DAY, "historical"),
        "routed 800 days": _event(db, b, None, "k3", 800 * DAY, "routed"),
        "routed 399 days": _event(db, b, None, "k4", 399 * DAY, "routed"),
        "historical 399 days": _event(db, b, None, "k5", 399 * DAY, "historical"),
        "routed today": _event(db, b, customer, "k6", timedelta(hours=1), "routed"),
        "pending 800 days": _event(db, b, None, "k7", 800 * DAY, "pending"),
        "failed 800 days": _event(db, b, None, "k8", 800 * DAY, "failed"),
    }
    _one(db, "INSERT INTO public.enrollment_decisions (business_id, trigger_event_id, "
         "customer_id, decision, reason) VALUES (:b, :e, :c, 'skipped', 'no_active_sequence') "
         "RETURNING id", b=b, e=events["routed 401 days"], c=customer)

    assert delete_old_events(db, config, now=NOW, window=timedelta(days=30)) == 3

    with db.connect() as conn:
        ids = {r.id for r in conn.execute(sa.text("SELECT id FROM public.trigger_events"))}
    assert {label for label, e in events.items() if e in ids} == {
        "routed 399 days", "historical 399 days", "routed today", "pending 800 days",
        "failed 800 days"}
    # the decision stays, without its event; explain tells the story without it
    assert _one(db, "SELECT count(*) FROM public.enrollment_decisions "
                "WHERE trigger_event_id IS NULL") == 1
    story = explain_customer(db, str(customer))
    assert len(story["decisions"]) == 1
    assert [e["id"] for e in story["events"]] == [events["routed today"]]
    assert any("decision" in line for line in story_lines(story))
    with pytest.raises(NotFoundError, match="event_retention_days"):
        explain_event(db, str(events["routed 401 days"]))


def test_event_retention_zero_keeps_everything(db: Database, config: Config) -> None:
    b = _business(db)
    _event(db, b, None, "k1", 3000 * DAY, "routed")
    assert delete_old_events(db, _settings(config, journeys__event_retention_days=0),
                             now=NOW) == 0
    assert _one(db, "SELECT count(*) FROM public.trigger_events") == 1


def test_event_retention_must_outlast_the_backfill_horizon(
        workdir: Path, db: Database, config: Config) -> None:
    def load(**env: str) -> Config:
        return load_config(None, environ=env)

    with pytest.raises(ConfigError, match="must be longer than 'sync.backfill_horizon_days'"):
        load(BLIPPSYNC_JOURNEYS_EVENT_RETENTION_DAYS="14")
    with pytest.raises(ConfigError, match="backfill_horizon_days' \\(30\\)"):
        load(BLIPPSYNC_SYNC_BACKFILL_HORIZON_DAYS="30",
             BLIPPSYNC_JOURNEYS_EVENT_RETENTION_DAYS="30")
    with pytest.raises(ConfigError, match="'sync.noop_run_retention_days' must be 0 or more"):
        load(BLIPPSYNC_SYNC_NOOP_RUN_RETENTION_DAYS="-1")
    assert load(BLIPPSYNC_JOURNEYS_EVENT_RETENTION_DAYS="15")[
        "journeys.event_retention_days"] == 15
    assert load(BLIPPSYNC_JOURNEYS_EVENT_RETENTION_DAYS="0")["journeys.event_retention_days"] == 0
    toml = workdir / "bad.toml"
    toml.write_text("[journeys]\nevent_retention_days = 7\n")
    with pytest.raises(ConfigError, match="bad.toml"):
        load_config(toml, environ={})

    # a Config built around load_config is refused by the deletion itself, before any delete
    b = _business(db)
    _event(db, b, None, "k1", 20 * DAY, "routed")
    with pytest.raises(ConfigError, match="event_retention_days"):
        delete_old_events(db, _settings(config, journeys__event_retention_days=10), now=NOW)
    with pytest.raises(ConfigError, match="event_retention_days"):
        delete_old_runs(db, _settings(config, journeys__event_retention_days=10), now=NOW)
    assert _one(db, "SELECT count(*) FROM public.trigger_events") == 1


# --- the daily job ----------------------------------------------------------------------


def test_the_daily_retention_job_deletes_and_says_what(
        db: Database, config: Config, caplog: pytest.LogCaptureFixture) -> None:
    b = _business(db)
    qbo = _connection(db, b, "quickbooks")
    old_noop = _run(db, b, qbo, 10 * DAY)
    old_failed = _run(db, b, qbo, 400 * DAY, status="failed", error="e")
    latest = _run(db, b, qbo, timedelta(minutes=1))
    _event(db, b, None, "old", 500 * DAY, "routed")
    kept_event = _event(db, b, None, "new", 5 * DAY, "routed")
    jobs = Jobs(db, config, load_plugins(), DaemonMetrics(), "replica-a")
    with caplog.at_level(logging.INFO, logger="blippsync.daemon.jobs"):
        jobs.retention()
    assert _remaining_runs(db, {"noop": old_noop, "failed": old_failed, "latest": latest}) == {
        "latest"}
    assert _one(db, "SELECT array_agg(id) FROM public.trigger_events") == [kept_event]
    said = caplog.text
    assert "deleted 1 no-op sync runs older than 7 days, 1 sync runs older than 365 days" in said
    assert "deleted 1 routed trigger events older than 400 days" in said


def test_blippsync_maintenance_runs_the_same_retention(
        db: Database, cli_env: dict[str, str], workdir: Path) -> None:
    from click.testing import CliRunner

    from blippsync.cli import cli

    b = _business(db)
    qbo = _connection(db, b, "quickbooks")
    _run(db, b, qbo, 10 * DAY)
    _run(db, b, qbo, 400 * DAY, status="failed", error="e")
    latest = _run(db, b, qbo, timedelta(minutes=1))
    _event(db, b, None, "old", 500 * DAY, "routed")
    out = CliRunner().invoke(cli, ["maintenance", "--json"], env=cli_env)
    assert out.exit_code == 0, out.output
    report = json.loads(out.output)
    assert (report["noop_runs_deleted"], report["old_runs_deleted"],
            report["events_deleted"]) == (1, 1, 1)
    assert _one(db, "SELECT array_agg(id) FROM public.sync_runs") == [latest]

    refused = CliRunner().invoke(cli, ["maintenance"], env={
        **cli_env, "BLIPPSYNC_JOURNEYS_EVENT_RETENTION_DAYS": "3"})
    assert refused.exit_code != 0
    assert "must be longer than 'sync.backfill_horizon_days'" in refused.output
