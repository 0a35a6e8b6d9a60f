"""Daemons as real processes: SIGTERM mid-sync, SIGKILL while holding a lease, and two
replicas sharing one database under a stream of webhooks and due steps."""

from __future__ import annotations

import itertools
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import test_daemon_support as support
from test_daemon_support import FakeRemote, sign, webhook_body

from blippsync.businesses import add_business
from blippsync.connections import ensure_connection
from blippsync.database import Database

SUPPORT_SCRIPT = Path(support.__file__).resolve()
REPO = SUPPORT_SCRIPT.parent.parent


@pytest.fixture
def remote() -> Iterator[FakeRemote]:
    with FakeRemote() as fake:
        yield fake


class Replica:
    """One `Daemon.run()` in a child process (the loopback connector loaded via `extra`)."""

    def __init__(self, tmp_path: Path, name: str, database_url: str, remote: FakeRemote,
                 **settings: Any) -> None:
        self.name = name
        self.port = support.free_port()
        config = support.write_config(tmp_path / f"{name}.toml", database_url, remote.url,
                                      port=self.port, id=name, **settings)
        self.log = tmp_path / f"{name}.log"
        env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
        env = {k: v for k, v in env.items() if not k.startswith("BLIPPSYNC_")}
        with self.log.open("wb") as log_file:  # the child keeps its own descriptor
            self.proc = subprocess.Popen([sys.executable, str(SUPPORT_SCRIPT), str(config)],
                                         stdout=subprocess.DEVNULL, stderr=log_file,
                                         env=env, cwd=tmp_path)
        _wait(self._serving, timeout=30, what=f"{name} serving")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serving(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"{self.name} exited early:\n{self.log.read_text()[-3000:]}")
        try:
            return httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def _wait(predicate: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _scalar(db: Database, sql: str, **params: Any) -> Any:
    with db.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def _connection(db: Database, account: str, **settings: Any) -> Any:
    business = add_business(db, name=f"Biz {account}", owner_email=f"{account}@loop.test",
                            timezone="UTC")
    with db.begin() as conn:
        return ensure_connection(conn, business, "loopback", account, settings)


SLOW_SYNC = {"page_size": 5, "page_delay": 0.4}
BATCHES = "[sync]\nbatch_size = 10\n"  # commit every two pages


def test_sigterm_during_sync_exits_zero_and_next_run_resumes(tmp_path, database_url, db,
                                                             remote) -> None:
    connection = _connection(db, "acct-1", **SLOW_SYNC)
    for n in range(40):
        remote.add("acct-1", f"c{n:02d}")
    replicas = [Replica(tmp_path, "first", database_url, remote, extra=BATCHES)]
    try:
        _wait(lambda: _scalar(db, "SELECT cursor FROM connections") is not None,
              what="a committed checkpoint")
        started = time.monotonic()
        replicas[0].signal(signal.SIGTERM)
        assert replicas[0].wait(12) == 0
        assert time.monotonic() - started < 8 + 2  # within shutdown_grace_seconds
        with db.connect() as conn:
            row = conn.execute(sa.text("SELECT cursor, lease_owner, next_sync_at <= now() AS due "
                                       "FROM connections")).one()
            runs = conn.execute(sa.text("SELECT status FROM sync_runs")).scalars().all()
        stopped_at = row.cursor["seq"]
        assert 0 < stopped_at < 40, "the sync should have stopped part-way"
        assert row.lease_owner is None and row.due
        assert runs == ["interrupted"]
        assert _scalar(db, "SELECT count(*) FROM customers") == stopped_at  # cursor = writes
        asked_before = len(remote.changes_log)

        replicas.append(Replica(tmp_path, "second", database_url, remote, extra=BATCHES))
        _wait(lambda: _scalar(db, "SELECT count(*) FROM customers") == 40, what="the resumed run")
        assert remote.changes_log[asked_before] == ("acct-1", stopped_at)  # resumed, not restarted
        replicas[1].signal(signal.SIGTERM)
        assert replicas[1].wait(12) == 0
    finally:
        for replica in replicas:
            replica.stop()
    assert _scalar(db, "SELECT count(*) FROM trigger_events") == 40
    assert _scalar(db, "SELECT cursor->>'seq' FROM connections WHERE id = :id",
                   id=connection.id) == "40"


def test_sigterm_bound_holds_when_a_page_takes_longer_than_the_grace(tmp_path, database_url, db,
                                                                     remote) -> None:
    _connection(db, "acct-1", page_size=5, page_delay=6)
    for n in range(20):
        remote.add("acct-1", f"c{n:02d}")
    replica = Replica(tmp_path, "slow", database_url, remote, shutdown_grace_seconds=1.0,
                      extra="[sync]\nbatch_size = 5\n")
    try:
        _wait(lambda: remote.passes, what="a sync pass to begin")
        time.sleep(0.5)
        started = time.monotonic()
        replica.signal(signal.SIGTERM)
        assert replica.wait(10) == 0
        assert time.monotonic() - started < 1.0 + 2.5
    finally:
        replica.stop()
    assert _scalar(db, "SELECT lease_owner FROM connections") is None
    assert _scalar(db, "SELECT cursor FROM connections") is None  # no checkpoint reached
    assert _scalar(db, "SELECT status FROM sync_runs") in ("running", "interrupted")


def test_second_signal_exits_at_once(tmp_path, database_url, db, remote) -> None:
    _connection(db, "acct-1", page_size=5, page_delay=6)
    for n in range(20):
        remote.add("acct-1", f"c{n:02d}")
    replica = Replica(tmp_path, "impatient", database_url, remote, shutdown_grace_seconds=30.0)
    try:
        _wait(lambda: remote.passes, what="a sync pass to begin")
        replica.signal(signal.SIGTERM)
        time.sleep(0.3)
        started = time.monotonic()
        replica.signal(signal.SIGTERM)
        assert replica.wait(5) == 128 + signal.SIGTERM
        assert time.monotonic() - started < 2
    finally:
        replica.stop()


def test_sigkilled_lease_holder_is_taken_over_after_expiry(tmp_path, database_url, db,
                                                          remote) -> None:
    _connection(db, "acct-1", **SLOW_SYNC)
    for n in range(40):
        remote.add("acct-1", f"c{n:02d}")
    settings = {"lease_seconds": 3, "extra": BATCHES}
    doomed = Replica(tmp_path, "doomed", database_url, remote, **settings)
    heir = None
    try:
        _wait(lambda: _scalar(db, "SELECT cursor FROM connections") is not None,
              what="a committed checkpoint")
        doomed.proc.kill()
        doomed.wait(5)
        with db.connect() as conn:
            held = conn.execute(sa.text("SELECT lease_owner, lease_expires_at, cursor "
                                        "FROM connections")).one()
        assert held.lease_owner == "doomed"  # a crash releases nothing
        remote.active.clear()  # the killed pass never said goodbye
        asked_before = len(remote.changes_log)
        heir = Replica(tmp_path, "heir", database_url, remote, **settings)
        _wait(lambda: _scalar(db, "SELECT count(*) FROM customers") == 40, timeout=40,
              what="the heir to finish the sync")
        with db.connect() as conn:
            runs = conn.execute(sa.text("SELECT started_at FROM sync_runs ORDER BY 1")).all()
        assert len(runs) == 2  # the killed pass, then the heir's, after the lease expired
        assert runs[1].started_at >= held.lease_expires_at
        assert remote.changes_log[asked_before] == ("acct-1", held.cursor["seq"])
        heir.signal(signal.SIGTERM)
        assert heir.wait(12) == 0
    finally:
        doomed.stop()
        if heir is not None:
            heir.stop()
    assert _scalar(db, "SELECT count(*) FROM trigger_events") == 40
    assert _scalar(db, "SELECT count(DISTINCT external_id) FROM customers") == 40
    assert max(remote.max_concurrent.values()) == 1


# --- two replicas, one database, a minute of traffic --------------------------------------

JOURNEY_SETTINGS = """
[channels]
email = "outbox"
sms = "outbox"
outbox_dir = "{outbox}"
[journeys]
email_hours = "00:00-24:00"
sms_hours = "00:00-24:00"
[sync]
batch_size = 20
"""


def _sequence(db: Database, business_id: Any) -> None:
    from blippsync.journeys.apply import apply_sequence_file
    from blippsync.journeys.definitions import SequenceFile, parse_sequence

    spec = parse_sequence({
        "name": "Thank you", "trigger_source": "loopback", "trigger_event_type": "job_completed",
        "status": "active", "settings": {"cooldown_days": 0},
        "steps": [{"type": "email", "purpose": "thank_you", "subject": "Thank you",
                   "body": "Thanks for choosing us."}]}, "test sequence")
    apply_sequence_file(db, SequenceFile(path=Path("test.toml"), business={},
                                         sequences=(spec,)), business_id=str(business_id))


@pytest.mark.slow
def test_two_daemons_share_one_database_for_half_a_minute(tmp_path, database_url, db,
                                                          remote) -> None:
    accounts = [f"acct-{n}" for n in range(6)]
    for account in accounts:
        connection = _connection(db, account, page_size=10)
        _sequence(db, connection.business_id)
    outbox = tmp_path / "outbox"
    settings = {"sync_interval_seconds": 2, "workers": 2, "lease_seconds": 6,
                "extra": JOURNEY_SETTINGS.format(outbox=outbox)}
    replicas = [Replica(tmp_path, name, database_url, remote, **settings)
                for name in ("alpha", "beta")]
    rng = random.Random(7)
    sent_bodies: list[bytes] = []
    try:
        deadline = time.monotonic() + 30  # five lease periods of steady traffic
        for n in itertools.count():
            if time.monotonic() > deadline:
                break
            account = rng.choice(accounts)
            item = remote.add(account, f"item-{n}")
            if rng.random() < 0.6:  # announced by webhook too, to either replica
                body = webhook_body([{"id": f"evt-{n}", "account": account, "item": item["id"],
                                      "at": item["at"]}])
                sent_bodies.append(body)
                target = replicas[n % 2]
                response = httpx.post(f"{target.base}/webhooks/loopback", content=body,
                                      headers={"content-type": "application/json",
                                               support.SIGNATURE_HEADER: sign(body)})
                assert response.status_code == 200
            if sent_bodies and rng.random() < 0.15:  # a sender retrying an old delivery
                old = rng.choice(sent_bodies)
                httpx.post(f"{replicas[(n + 1) % 2].base}/webhooks/loopback", content=old,
                           headers={"content-type": "application/json",
                                    support.SIGNATURE_HEADER: sign(old)})
            time.sleep(0.25)
        total = len(remote.items)
        _wait(lambda: _scalar(db, "SELECT count(*) FROM review_requests WHERE status = 'sent'")
              == total, timeout=60, what="every step sent")
        metrics = [httpx.get(f"{r.base}/metrics").text for r in replicas]
        for replica in replicas:
            replica.signal(signal.SIGTERM)
        assert [r.wait(15) for r in replicas] == [0, 0]
    finally:
        for replica in replicas:
            replica.stop()
    assert total > 30  # half a minute of steady traffic even on a loaded machine
    assert _scalar(db, "SELECT count(*) FROM customers") == total
    assert _scalar(db, "SELECT count(*) FROM trigger_events") == total
    # every event routed once: routed, one decision each, one enrollment per customer
    routed = "SELECT count(*) FROM trigger_events WHERE routing_state = 'routed'"
    assert _scalar(db, routed) == total
    assert _scalar(db, "SELECT count(*) FROM enrollment_decisions") == total
    assert _scalar(db, "SELECT count(DISTINCT trigger_event_id) FROM enrollment_decisions") == total
    assert _scalar(db, "SELECT count(*) FROM customer_enrollments") == total
    # every step sent once: one ledger row per enrollment step, one outbox file per send
    assert _scalar(db, "SELECT count(DISTINCT send_key) FROM review_requests") == total
    assert len([p for p in outbox.rglob("*.eml")]) == total
    # every connection synced by one daemon at a time, and both daemons did work
    assert set(remote.max_concurrent) and max(remote.max_concurrent.values()) == 1
    for text in metrics:
        assert 'blippsync_syncs_total{connector="loopback",outcome="succeeded"}' in text
    processed = _scalar(db, "SELECT count(*) FROM webhook_deliveries WHERE state = 'processed'")
    assert processed == len(sent_bodies)
    assert _scalar(db, "SELECT count(*) FROM webhook_deliveries WHERE state <> 'processed'") == 0
