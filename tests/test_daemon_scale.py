"""Many connections, two daemon processes, one database: nobody starves, nothing runs twice.

The CI-sized form of bench/bench_scale.py: N connections of the loopback connector (real
HTTP to a fake remote that records every pass), csv connections beside them that must never
be claimed, each connection due once per (short) interval at a spread offset, and two
`Daemon.run()` processes. Every connection must start within its interval of being due,
every time, and no connection may ever have two passes at once.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
import test_daemon_support as support
from test_daemon_processes import Replica
from test_daemon_support import FakeRemote

from blippsync.config import load_config
from blippsync.daemon.jobs import Jobs
from blippsync.database import Database
from blippsync.metrics import DaemonMetrics
from blippsync.plugins import load_plugins


@pytest.fixture
def remote() -> Iterator[FakeRemote]:
    with FakeRemote() as fake:
        yield fake


def _connections(db: Database, n: int) -> None:
    with db.begin() as conn:
        q = lambda sql, **p: conn.execute(sa.text(sql), p)  # noqa: E731
        q("INSERT INTO customer_sources (name) VALUES ('loopback') ON CONFLICT DO NOTHING")
        q("INSERT INTO businesses (name, created_by) SELECT 'Biz ' || g, 'o' || g || '@x.test' "
          "FROM generate_series(1, :n) g", n=n)
        q("INSERT INTO connections (business_id, connector, account_id, next_sync_at) "
          "SELECT id, 'loopback', 'acct-' || id, now() + interval '1 day' FROM businesses")
        q("INSERT INTO connections (business_id, connector, next_sync_at) "
          "SELECT id, 'csv', now() - interval '1 day' FROM businesses")
        # steady state: the daily reconciliation ran (else it makes everything due at once)
        q("INSERT INTO blippsync.daemon_tasks (name, last_finished_at) "
          "VALUES ('reconcile', now()), ('retention', now())")


@pytest.mark.parametrize("n, interval, workers", [
    pytest.param(100, 6, 2, id="100", marks=pytest.mark.slow),
    pytest.param(1000, 20, 4, id="1000", marks=pytest.mark.slow),
])
def test_connections_are_all_synced_within_their_interval_and_never_twice_at_once(
        tmp_path: Path, database_url: str, db: Database, remote: FakeRemote,
        n: int, interval: int, workers: int) -> None:
    _connections(db, n)
    settings = {"sync_interval_seconds": interval, "workers": workers, "lease_seconds": 10,
                "tick_seconds": 1.0, "journey_interval_seconds": 5.0}
    replicas = [Replica(tmp_path, name, database_url, remote, **settings)
                for name in ("alpha", "beta")]
    try:
        plain = database_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain) as conn:  # each due once per interval, spread
            due = {str(r[0]): float(r[1]) for r in conn.execute(
                "UPDATE connections SET next_sync_at = now() + random() * %s * interval "
                "'1 second' WHERE connector = 'loopback' "
                "RETURNING id, extract(epoch FROM next_sync_at)", (interval,))}
        time.sleep(interval * 1.5)
        ended = time.time()
    finally:
        for replica in replicas:
            replica.stop()
    with remote.lock:
        begun = {k: list(v) for k, v in remote.begun.items()}
        overlapping = {k: v for k, v in remote.max_concurrent.items() if v > 1}
    late = {}
    for cid, first_due in due.items():
        expected = first_due
        for start in sorted(begun.get(cid, [])):
            if start - expected > interval:
                late[cid] = start - expected
            expected = start + interval  # next due at least an interval after this start
        if ended - expected > interval:
            late[cid] = ended - expected
    assert not overlapping, f"connections synced twice at once: {overlapping}"
    assert not late, f"{len(late)} of {n} connections not started within {interval} s: " \
                     f"worst {max(late.values()):.1f} s late"
    assert set(begun) <= set(due)  # no csv connection was ever claimed
    assert sum(len(v) for v in begun.values()) >= n // 2  # (the last due may still wait)


def test_reconciliation_spreads_connections_over_one_interval(tmp_path: Path, database_url: str,
                                                               db: Database,
                                                               remote: FakeRemote) -> None:
    """The daily reconciliation must not make every connection due at the same instant:
    each becomes due within one sync interval, never later than it already was."""
    _connections(db, 200)
    with db.begin() as conn:
        conn.execute(sa.text("UPDATE blippsync.daemon_tasks SET last_finished_at = NULL"))
        soon = conn.execute(sa.text(
            "UPDATE connections SET next_sync_at = now() + interval '1 minute' WHERE id = "
            "(SELECT min(id::text)::uuid FROM connections WHERE connector = 'loopback') "
            "RETURNING id")).scalar()
    path = support.write_config(tmp_path / "c.toml", database_url, remote.url,
                                sync_interval_seconds=600)
    Jobs(db, load_config(path, environ={}), load_plugins(extra=[("loopback", support)]),
         DaemonMetrics(), "me").reconcile()
    with db.connect() as conn:
        waits = dict(conn.execute(sa.text(
            "SELECT id, extract(epoch FROM next_sync_at - now()) FROM connections "
            "WHERE connector = 'loopback'")).all())
    assert waits.pop(soon) <= 60
    assert all(0 <= float(w) <= 600 for w in waits.values())
    early = sum(1 for w in waits.values() if w < 300)
    assert 60 < early < 140  # uniform over the interval, not one instant


def _bench_scale():  # type: ignore[no-untyped-def]
    path = Path(__file__).resolve().parent.parent / "bench" / "bench_scale.py"
    spec = importlib.util.spec_from_file_location("bench_scale", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_scale"] = module
    spec.loader.exec_module(module)
    return module


def test_bench_fleet_syncs_with_the_real_connectors(tmp_path: Path, database_url: str) -> None:
    """bench/bench_scale.py's set-up and fake, end to end with `blippsync run-once`: every
    QuickBooks and Jobber connection decrypts its tokens, refreshes the expired access
    token at the fake, and stores its customers; the fake counts each company apart."""
    bench = _bench_scale()
    plain = database_url.replace("postgresql+psycopg://", "postgresql://")
    with bench.ScaleFake(latency=0.0) as fake:
        fleet = bench.setup(plain, 6, ["quickbooks", "jobber"], fake, time.time() - 1, 0.0)
        assert sorted(kind for kind, _ in fleet.kinds.values()) == ["jobber"] * 3 + \
            ["quickbooks"] * 3
        with psycopg.connect(plain) as conn:
            conn.execute("UPDATE connections SET next_sync_at = now() "
                         "WHERE connector IN ('quickbooks', 'jobber')")
        config = bench.daemon_config(tmp_path / "c.toml", database_url, fake.url, port=0)
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLIPPSYNC_")}
        out = subprocess.run([sys.executable, "-m", "blippsync", "--config", str(config),
                              "run-once", "--json"], capture_output=True, text=True, env=env,
                             timeout=120, cwd=tmp_path)
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        with psycopg.connect(plain) as conn:
            customers = conn.execute("SELECT count(*) FROM customers").fetchone()[0]
            runs = conn.execute("SELECT count(*) FROM sync_runs WHERE status = 'succeeded' "
                                "AND connection_id IS NOT NULL").fetchone()[0]
        assert customers == 6 * bench.ITEMS_PER_ACCOUNT
        assert runs == 6
        assert (fake.refreshes, fake.refused_refreshes) == (6, 0)  # all were expired
        assert {k.split(":")[0] for k in fake.max_in_flight} == {"qbo", "jobber"}
        assert len(fake.max_in_flight) == 6
