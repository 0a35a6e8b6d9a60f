"""The daemon's periodic jobs and webhook retries, called directly on a real PostgreSQL:
reconciliation, token refresh, retention, and a webhook fetch that fails, is retried with
backoff and finally gives up."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import test_daemon_support as support
from fakes.intuit import fake_intuit
from fakes.qbo_kit import connected_business, qbo_config
from test_daemon_support import FakeRemote

from blippsync import webhook_inbox
from blippsync.businesses import add_business
from blippsync.config import Config, load_config
from blippsync.connections import ensure_connection, get_connection
from blippsync.connector import WebhookNotice
from blippsync.daemon import heartbeat
from blippsync.daemon.jobs import Jobs
from blippsync.daemon.worker import Worker
from blippsync.database import Database
from blippsync.metrics import DaemonMetrics
from blippsync.plugins import Plugins, load_plugins


@pytest.fixture
def remote() -> Iterator[FakeRemote]:
    with FakeRemote() as fake:
        yield fake


@pytest.fixture
def plugins() -> Plugins:
    return load_plugins(extra=[("loopback", support)])


def _config(tmp_path: Path, database_url: str, url: str, **daemon: Any) -> Config:
    return load_config(support.write_config(tmp_path / "c.toml", database_url, url, **daemon),
                       environ={})


def _value(metrics: DaemonMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def _rows(db: Database, sql: str, **params: Any) -> list[Any]:
    with db.connect() as conn:
        return list(conn.execute(sa.text(sql), params))


def _loopback(db: Database, account: str, **settings: Any) -> Any:
    business = add_business(db, name=f"Loop {account}", owner_email=f"{account}@loop.test",
                            timezone="UTC")
    with db.begin() as conn:
        return ensure_connection(conn, business, "loopback", account, settings=settings)


# --- webhook notices: retried with backoff, then given up ------------------------------


def test_a_failing_fetch_is_retried_with_backoff_then_given_up(
        tmp_path: Path, database_url: str, db: Database, remote: FakeRemote,
        plugins: Plugins) -> None:
    config = _config(tmp_path, database_url, remote.url, webhook_max_attempts=3)
    connection = _loopback(db, "acct-1", remote_url="http://127.0.0.1:9")  # nobody listens
    notice = WebhookNotice(account_id="acct-1", entity="item", entity_id="i1",
                           operation="update", delivery_id="evt-1")
    assert webhook_inbox.store(db, "loopback", [notice], b"{}") == (1, 0)
    metrics = DaemonMetrics()
    worker = Worker(db, config, plugins, metrics, "test-owner")
    loopback = plugins.connector("loopback")
    states = []
    for _attempt in range(3):
        worker.process_notices(get_connection_now(db, connection.id), loopback, support_halt())
        row = _rows(db, "SELECT state, attempts, last_error, next_attempt_at - now() AS wait "
                        "FROM webhook_deliveries")[0]
        states.append((row.state, row.attempts))
        if row.state == "pending":
            assert timedelta(seconds=4) < row.wait <= timedelta(seconds=5 * 2 ** row.attempts)
            assert "ConnectError" in row.last_error or "connect" in row.last_error.lower()
            worker.process_notices(get_connection_now(db, connection.id), loopback,
                                   support_halt())  # not due yet: untouched
            assert _rows(db, "SELECT attempts FROM webhook_deliveries")[0].attempts == row.attempts
            with db.begin() as conn:  # the backoff has passed
                conn.execute(sa.text("UPDATE webhook_deliveries SET next_attempt_at = now()"))
    assert states == [("pending", 1), ("pending", 2), ("failed", 3)]
    assert _value(metrics, "blippsync_webhook_notices_total", connector="loopback",
                  outcome="failed") == 3
    worker.process_notices(get_connection_now(db, connection.id), loopback, support_halt())
    assert _rows(db, "SELECT attempts FROM webhook_deliveries")[0].attempts == 3  # given up


def test_a_fetch_that_fails_once_succeeds_on_retry(tmp_path: Path, database_url: str,
                                                   db: Database, remote: FakeRemote,
                                                   plugins: Plugins) -> None:
    config = _config(tmp_path, database_url, remote.url)
    connection = _loopback(db, "acct-1", remote_url="http://127.0.0.1:9")
    item = remote.add("acct-1", "i1")
    notice = WebhookNotice(account_id="acct-1", entity="item", entity_id=item["id"],
                           operation="update", delivery_id="evt-1")
    webhook_inbox.store(db, "loopback", [notice], b"{}")
    worker = Worker(db, config, plugins, DaemonMetrics(), "test-owner")
    loopback = plugins.connector("loopback")
    worker.process_notices(get_connection_now(db, connection.id), loopback, support_halt())
    with db.begin() as conn:  # the remote is back, the backoff over
        conn.execute(sa.text("UPDATE connections SET settings = settings || "
                             "jsonb_build_object('remote_url', CAST(:url AS text))"),
                     {"url": remote.url})
        conn.execute(sa.text("UPDATE webhook_deliveries SET next_attempt_at = now()"))
    worker.process_notices(get_connection_now(db, connection.id), loopback, support_halt())
    row = _rows(db, "SELECT state, attempts, last_error FROM webhook_deliveries")[0]
    assert (row.state, row.attempts, row.last_error) == ("processed", 1, None)
    assert [r.email for r in _rows(db, "SELECT email FROM customers")] == ["i1@loop.test"]


# --- reconciliation ----------------------------------------------------------------------


def test_reconcile_makes_webhook_connections_due_once_per_period(
        tmp_path: Path, database_url: str, db: Database, remote: FakeRemote,
        plugins: Plugins) -> None:
    config = _config(tmp_path, database_url, remote.url, reconcile_interval_hours=24)
    hooked = _loopback(db, "acct-1")
    business = add_business(db, name="Manual", owner_email="m@x.test", timezone="UTC")
    with db.begin() as conn:
        manual = ensure_connection(conn, business, "manual")
        conn.execute(sa.text("UPDATE connections SET next_sync_at = now() + interval '5 hours'"))
    jobs = Jobs(db, config, plugins, DaemonMetrics(), "replica-a")
    jobs.reconcile()
    # due within one sync interval (spread: see test_daemon_scale), not in 5 hours
    soon = "next_sync_at <= now() + make_interval(secs => :interval)"
    interval = config["daemon.sync_interval_seconds"]
    due = {r.id: r.due for r in _rows(db, f"SELECT id, {soon} AS due FROM connections",
                                      interval=interval)}
    assert due == {hooked.id: True, manual.id: False}  # only webhook-driven connectors
    with db.begin() as conn:
        conn.execute(sa.text("UPDATE connections SET next_sync_at = now() + interval '5 hours'"))
    Jobs(db, config, plugins, DaemonMetrics(), "replica-b").reconcile()  # same period
    assert not _rows(db, f"SELECT 1 FROM connections WHERE {soon}", interval=interval)


# --- retention -----------------------------------------------------------------------------


def test_retention_deletes_old_notices_and_daemon_rows_once_a_day(
        tmp_path: Path, database_url: str, db: Database, remote: FakeRemote,
        plugins: Plugins) -> None:
    config = _config(tmp_path, database_url, remote.url, retention_days=30)
    _loopback(db, "acct-1")
    notices = [WebhookNotice(account_id="acct-1", entity="item", entity_id=f"i{n}",
                             operation="update", delivery_id=f"evt-{n}") for n in range(4)]
    webhook_inbox.store(db, "loopback", notices, b"{}")
    heartbeat.started(db, "old-daemon", {})
    heartbeat.stopped(db, "old-daemon")
    heartbeat.started(db, "live-daemon", {})
    with db.begin() as conn:  # two old finished notices, one old pending, one recent
        conn.execute(sa.text("""UPDATE webhook_deliveries SET received_at = now() - interval
            '40 days', state = CASE entity_id WHEN 'i0' THEN 'processed' WHEN 'i1' THEN 'failed'
            ELSE state END WHERE entity_id IN ('i0', 'i1', 'i2')"""))
        conn.execute(sa.text("UPDATE blippsync.daemons SET stopped_at = now() - "
                             "interval '40 days' WHERE id = 'old-daemon'"))
    Jobs(db, config, plugins, DaemonMetrics(), "replica-a").retention()
    kept = sorted(r.entity_id for r in _rows(db, "SELECT entity_id FROM webhook_deliveries"))
    assert kept == ["i2", "i3"]  # a pending notice is never dropped, however old
    assert [r.id for r in _rows(db, "SELECT id FROM blippsync.daemons")] == ["live-daemon"]
    with db.begin() as conn:
        conn.execute(sa.text("UPDATE webhook_deliveries SET state = 'processed', received_at = "
                             "now() - interval '40 days'"))
    Jobs(db, config, plugins, DaemonMetrics(), "replica-b").retention()  # same day: no run
    assert len(_rows(db, "SELECT 1 FROM webhook_deliveries")) == 2


# --- token refresh -------------------------------------------------------------------------


def test_token_sweep_refreshes_what_expires_soon_and_counts_refusals(
        tmp_path: Path, database_url: str, db: Database) -> None:
    with fake_intuit() as (url, state):
        config = qbo_config(tmp_path, database_url, url)
        _business, connection = connected_business(db, config, state.refresh_token)
        with db.begin() as conn:  # a first access token, valid for an hour
            conn.execute(sa.text("UPDATE connections SET token_expires_at = :at"),
                         {"at": datetime.now(UTC) - timedelta(seconds=1)})
        plugins, metrics = load_plugins(environ={}), DaemonMetrics()
        jobs = Jobs(db, config, plugins, metrics, "replica-a")
        jobs.refresh_tokens()
        assert state.refreshes == 1
        # 8 minutes left: past the vault's own 5-minute margin, inside the sweep's 10 minutes
        soon = datetime.now(UTC) + timedelta(minutes=8)
        _expire(db, soon)
        jobs.refresh_tokens()
        after = get_connection_now(db, connection.id).token_expires_at
        assert after is not None and after > soon + timedelta(minutes=30)
        assert state.refreshes == 2
        assert _value(metrics, "blippsync_token_refreshes_total") == 2
        jobs.refresh_tokens()  # fresh now: nothing to do
        assert state.refreshes == 2

        _expire(db, soon)
        state.refresh_token = "RT1-revoked-at-intuit"  # ours is refused from now on
        jobs.refresh_tokens()
    assert _value(metrics, "blippsync_token_refresh_failures_total") == 1
    assert get_connection_now(db, connection.id).status == "token_expired"


def _expire(db: Database, at: datetime) -> None:
    """The stored access token (and its mirror on the connection) expires at `at`."""
    with db.begin() as conn:
        conn.execute(sa.text("UPDATE integrations_quickbooks SET token_expires_at = :at"),
                     {"at": at})
        conn.execute(sa.text("UPDATE connections SET token_expires_at = :at"), {"at": at})


def get_connection_now(db: Database, connection_id: Any) -> Any:
    with db.connect() as conn:
        return get_connection(conn, connection_id)


def support_halt() -> Any:
    import threading

    return threading.Event()
