"""The daemon in-process on a real PostgreSQL: leases, syncs, webhooks, health, metrics."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import sqlalchemy as sa
import test_daemon_support as support
from sqlalchemy.engine import make_url
from test_daemon_support import FakeRemote, sign, webhook_body

from blippsync.businesses import add_business
from blippsync.config import Config, load_config
from blippsync.connections import ensure_connection
from blippsync.daemon import Daemon, leases, tasks
from blippsync.database import Database
from blippsync.plugins import load_plugins


@pytest.fixture
def remote() -> Iterator[FakeRemote]:
    with FakeRemote() as fake:
        yield fake


@pytest.fixture
def plugins() -> Any:
    return load_plugins(extra=[("loopback", support)])


HEALTH_TOKEN = "health-token-for-tests"
DETAILS = {"Authorization": f"Bearer {HEALTH_TOKEN}"}


def _config(tmp_path: Path, database_url: str, remote: FakeRemote, **daemon: Any) -> Config:
    path = support.write_config(tmp_path / "config.toml", database_url, remote.url, **daemon)
    return load_config(path, environ={"BLIPPSYNC_HTTP_HEALTH_TOKEN": HEALTH_TOKEN})


def _connection(db: Database, account: str, name: str = "Loop Co") -> Any:
    business = add_business(db, name=name, owner_email=f"{account}@loop.test", timezone="UTC")
    with db.begin() as conn:
        return ensure_connection(conn, business, "loopback", account)


def _scalar(db: Database, sql: str, **params: Any) -> Any:
    with db.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def _wait(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Running:
    """A daemon serving in a thread of the test process."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.status: int | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.status = self.daemon.run(handle_signals=False)

    def __enter__(self) -> Running:
        self.thread.start()
        _wait(lambda: self.daemon._http is not None and self.daemon._http.server.started,
              what="http server")
        return self

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.daemon.http_port}"

    def __exit__(self, *exc: Any) -> None:
        self.daemon.request_stop()
        self.thread.join(30)


# --- leases ---------------------------------------------------------------------------


def test_claims_skip_each_other_and_expired_leases_are_taken_over(db: Database) -> None:
    ids = {_connection(db, f"a{n}", f"Biz {n}").id for n in range(4)}
    first = leases.claim(db, "one", limit=3, lease_seconds=1)
    second = leases.claim(db, "two", limit=3, lease_seconds=30)
    assert len(first) == 3 and len(second) == 1
    assert {lease.connection_id for lease in first + second} == ids
    assert leases.claim(db, "three", limit=5, lease_seconds=30) == []
    assert leases.renew(db, "one", [first[0].connection_id], lease_seconds=1) == {
        first[0].connection_id}
    time.sleep(1.2)  # "one" crashed: its leases expire
    taken = leases.claim(db, "three", limit=5, lease_seconds=30)
    assert {lease.connection_id for lease in taken} == {lease.connection_id for lease in first}
    assert leases.renew(db, "one", [first[0].connection_id], lease_seconds=1) == set()
    assert not leases.still_held(db, "one", first[0].connection_id)
    leases.release(db, "one", first[0].connection_id)  # not ours any more: no effect
    assert leases.still_held(db, "three", first[0].connection_id)
    assert sorted(map(str, leases.release_all(db, "three"))) == sorted(
        str(lease.connection_id) for lease in taken)


def test_a_task_runs_once_per_period_across_replicas(db: Database) -> None:
    ran: list[str] = []
    assert tasks.run_once_per_period(db, "a", "daily", period_seconds=3600, lease_seconds=60,
                                     work=lambda: ran.append("a"))
    assert not tasks.run_once_per_period(db, "b", "daily", period_seconds=3600,
                                         lease_seconds=60, work=lambda: ran.append("b"))
    assert ran == ["a"]


# --- the running daemon -----------------------------------------------------------------


def test_daemon_syncs_processes_webhooks_and_exposes_metrics(tmp_path, database_url, db, remote,
                                                              plugins) -> None:
    connection = _connection(db, "acct-1")
    for n in range(12):
        remote.add("acct-1", f"c{n}")
    config = _config(tmp_path, database_url, remote)
    with Running(Daemon(config, db, plugins)) as running:
        _wait(lambda: _scalar(db, "SELECT count(*) FROM customers") == 12, what="first sync")
        assert httpx.get(f"{running.base}/healthz").json()["status"] == "ok"
        item = remote.add("acct-1", "hooked")
        body = webhook_body([{"id": "evt-1", "account": "acct-1", "item": item["id"],
                              "at": item["at"]}])
        response = httpx.post(f"{running.base}/webhooks/loopback", content=body,
                              headers={"content-type": "application/json",
                                       support.SIGNATURE_HEADER: sign(body)})
        assert response.status_code == 200
        _wait(lambda: _scalar(db, "SELECT count(*) FROM webhook_deliveries "
                                  "WHERE state = 'processed'") == 1, what="webhook processed")
        assert _scalar(db, "SELECT count(*) FROM customers WHERE external_id = 'hooked'") == 1
        metrics = httpx.get(f"{running.base}/metrics").text
    assert running.status == 0
    assert 'blippsync_syncs_total{connector="loopback",outcome="succeeded"}' in metrics
    assert _metric(metrics, "blippsync_customers_upserted_total", 'connector="loopback"') == 13
    assert _metric(metrics, "blippsync_events_emitted_total", 'connector="loopback"') == 13
    assert _metric(metrics, "blippsync_webhook_deliveries_total",
                   'connector="loopback",outcome="accepted"') == 1
    assert _metric(metrics, "blippsync_webhook_notices_total",
                   'connector="loopback",outcome="processed"') == 1
    assert _metric(metrics, "blippsync_database_up") == 1
    assert "blippsync_due_step_lag_seconds" in metrics
    assert _metric(metrics, "blippsync_scheduler_ticks_total") > 0
    # stopped cleanly: leases given back, heartbeat says stopped, next sync scheduled
    assert _scalar(db, "SELECT count(*) FROM connections WHERE lease_owner IS NOT NULL") == 0
    assert _scalar(db, "SELECT stopped_at IS NOT NULL FROM blippsync.daemons") is True
    assert _scalar(db, "SELECT next_sync_at > now() + interval '5 minutes' FROM connections "
                       "WHERE id = :id", id=connection.id) is True


def _metric(text: str, name: str, labels: str = "") -> float:
    prefix = f"{name}{{{labels}}} " if labels else f"{name} "
    for line in text.splitlines():
        if line.startswith(prefix):
            return float(line[len(prefix):])
    raise AssertionError(f"{prefix!r} not in metrics")


def test_webhook_answers_fast_while_processing_is_slow(tmp_path, database_url, db, remote,
                                                       plugins) -> None:
    connection = _connection(db, "acct-1")
    with db.begin() as conn:  # fetching one notice takes 1.2 s at the remote
        conn.execute(sa.text("UPDATE connections SET settings = settings || "
                             "'{\"fetch_delay\": 1.2}', next_sync_at = now() + interval '1 day' "
                             "WHERE id = :id"), {"id": connection.id})
    for n in range(4):
        remote.add("acct-1", f"w{n}")
    config = _config(tmp_path, database_url, remote, webhook_batch_size=2)
    timings = []
    with Running(Daemon(config, db, plugins)) as running:
        for n in range(4):
            body = webhook_body([{"id": f"evt-{n}", "account": "acct-1", "item": f"w{n}"}])
            started = time.monotonic()
            response = httpx.post(f"{running.base}/webhooks/loopback", content=body,
                                  headers={"content-type": "application/cloudevents+json",
                                           support.SIGNATURE_HEADER: sign(body)})
            timings.append(time.monotonic() - started)
            assert response.status_code == 200
            time.sleep(0.4)
        busy = _scalar(db, "SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'")
        assert busy > 0, "processing should still be under way while we post"
        _wait(lambda: _scalar(db, "SELECT count(*) FROM webhook_deliveries "
                                  "WHERE state = 'processed'") == 4, timeout=30,
              what="all notices processed")
    assert max(timings) < 1.0, timings
    assert _scalar(db, "SELECT count(*) FROM trigger_events") == 4


def test_healthz_turns_unhealthy_without_the_database_and_back(tmp_path, database_url, db,
                                                               remote, plugins) -> None:
    config = _config(tmp_path, database_url, remote)
    dbname = make_url(database_url).database
    admin_url = make_url(database_url).set(drivername="postgresql", database="postgres")
    admin = psycopg.connect(admin_url.render_as_string(hide_password=False), autocommit=True)
    try:
        with Running(Daemon(config, db, plugins)) as running:
            first = httpx.get(f"{running.base}/healthz", headers=DETAILS)
            assert first.status_code == 200 and first.json()["database"]["ok"] is True
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,))
            down = httpx.get(f"{running.base}/healthz", timeout=10, headers=DETAILS)
            assert down.status_code == 503
            assert down.json()["database"]["ok"] is False
            assert down.json()["scheduler"]["ok"] is True
            assert "blippsync_database_up 0.0" in httpx.get(f"{running.base}/metrics").text
            admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
            _wait(lambda: httpx.get(f"{running.base}/healthz").status_code == 200,
                  what="healthy again")
    finally:
        admin.execute(f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
        admin.close()


def test_failing_connection_backs_off_and_is_reported(tmp_path, database_url, db, remote,
                                                      plugins) -> None:
    connection = _connection(db, "acct-1")
    with db.begin() as conn:  # the remote is unreachable for this connection
        conn.execute(sa.text("UPDATE connections SET settings = settings || "
                             "'{\"remote_url\": \"http://127.0.0.1:9\"}', "
                             "consecutive_failures = 3, last_success_at = now() - interval '2 days'"
                             " WHERE id = :id"), {"id": connection.id})
    config = _config(tmp_path, database_url, remote)
    with Running(Daemon(config, db, plugins)) as running:
        _wait(lambda: _scalar(db, "SELECT consecutive_failures FROM connections") == 4,
              what="a failed sync")
        report = httpx.get(f"{running.base}/healthz", headers=DETAILS).json()
        public = httpx.get(f"{running.base}/healthz")
        forged = httpx.get(f"{running.base}/healthz", headers={"Authorization": "Bearer nope"})
    assert report["status"] == "ok"  # a customer's problem is not the replica's
    assert [p["id"] for p in report["connections_needing_attention"]] == [str(connection.id)]
    # without the token: healthy or not, and nothing about any tenant
    assert public.json() == {"status": "ok"} == forged.json()
    assert str(connection.id) not in public.text + forged.text
    delay = _scalar(db, "SELECT extract(epoch FROM next_sync_at - last_error_at) FROM connections")
    assert 7 <= delay <= 9  # retry_seconds (1) * 2**3


def test_request_stop_with_nothing_running_exits_zero_quickly(tmp_path, database_url, db,
                                                              remote, plugins) -> None:
    config = _config(tmp_path, database_url, remote)
    running = Running(Daemon(config, db, plugins)).__enter__()
    started = time.monotonic()
    running.__exit__(None, None, None)
    assert running.status == 0 and time.monotonic() - started < 5


def test_throttle_waits_are_counted_where_they_happen_whatever_the_log_level(
        tmp_path, database_url, db, remote, plugins) -> None:
    connection = _connection(db, "acct-1")
    with db.begin() as conn:  # the connector reports 0.25 s per page it fetched
        conn.execute(sa.text("UPDATE connections SET settings = settings || "
                             "'{\"throttle_wait\": 0.25, \"page_size\": 5}' WHERE id = :id"),
                     {"id": connection.id})
    for n in range(12):
        remote.add("acct-1", f"c{n}")
    config = _config(tmp_path, database_url, remote)
    quiet = logging.getLogger("blippsync")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # no log line carries anything any more
    try:
        daemon = Daemon(config, db, plugins)
        with Running(daemon):
            _wait(lambda: _scalar(db, "SELECT count(*) FROM customers") == 12, what="a sync")
            _wait(lambda: daemon.metrics.registry.get_sample_value(
                "blippsync_syncs_total", {"connector": "loopback", "outcome": "succeeded"}),
                what="the sync's metrics")
    finally:
        quiet.setLevel(level)
    assert daemon.metrics.registry.get_sample_value(
        "blippsync_api_throttle_wait_seconds_total", {"connector": "loopback"}) == 0.75


def test_csv_inbox_is_imported_and_file_connections_are_never_claimed(tmp_path, database_url,
                                                                      db, remote,
                                                                      plugins) -> None:
    business = add_business(db, name="Csv Co", owner_email="c@csv.test", timezone="UTC")
    with db.begin() as conn:
        manual = ensure_connection(conn, business, "manual", "")
    inbox = tmp_path / "inbox" / str(business)
    inbox.mkdir(parents=True)
    (inbox / "customers.csv").write_text("Name,Email\nAda Csv,ada@csv.test\nBo Csv,bo@csv.test\n")
    config = _config(tmp_path, database_url, remote).with_values(
        csv__inbox_dir=str(tmp_path / "inbox"), csv__inbox_settle_seconds=0,
        daemon__inbox_scan_seconds=0.5)
    with Running(Daemon(config, db, plugins)):
        _wait(lambda: _scalar(db, "SELECT count(*) FROM customers WHERE source = 'csv'") == 2,
              what="the inbox file imported")
        _wait(lambda: not (inbox / "customers.csv").exists(), what="the file filed away")
        time.sleep(0.5)
        assert _scalar(db, "SELECT count(*) FROM sync_runs WHERE connection_id = :id",
                       id=manual.id) == 0
    assert list((inbox / "processed").glob("*-customers.csv"))
