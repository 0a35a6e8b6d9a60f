"""Crash safety: SIGKILL the import at random instants, run again, get the clean result."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from crash_trials import write_csv

from blippsync.businesses import add_business
from blippsync.database import Database

ROWS = 12_000
KILLS = 20


def _import(env: dict[str, str], path: Path, business: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "blippsync", "import", "csv", str(path),
                             "--business", business, "--json"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _state(db: Database, business) -> tuple:
    with db.connect() as conn:
        customers = conn.execute(sa.text(
            "SELECT external_id, name, email, phone, source FROM customers "
            "WHERE business_id = :b ORDER BY external_id"), {"b": business}).all()
        events = conn.execute(sa.text(
            "SELECT dedupe_key, event_type, historical, routing_state, occurred_at, "
            "customer_id IS NOT NULL FROM trigger_events WHERE business_id = :b "
            "ORDER BY dedupe_key"), {"b": business}).all()
        dupes = conn.execute(sa.text(
            "SELECT count(*) - count(DISTINCT external_id) FROM customers WHERE business_id = :b"),
            {"b": business}).scalar()
    return [tuple(c) for c in customers], [tuple(e) for e in events], dupes


@pytest.mark.slow
def test_sigkill_at_random_points_then_rerun_equals_clean_run(db: Database, database_url: str,
                                                              tmp_path: Path) -> None:
    path = tmp_path / "jobs.csv"
    write_csv(path, ROWS)
    killed = add_business(db, name="Killed", owner_email="k@crash.test", timezone="UTC")
    clean = add_business(db, name="Clean", owner_email="c@crash.test", timezone="UTC")
    env = {**os.environ, "BLIPPSYNC_DATABASE_URL": database_url, "BLIPPSYNC_SYNC_BATCH_SIZE": "700",
           "BLIPPSYNC_LOGGING_LEVEL": "ERROR"}
    rnd = random.Random(20261125)
    kills, mid_import = 0, 0
    while kills < KILLS:
        proc = _import(env, path, str(killed))
        time.sleep(rnd.uniform(0.4, 2.0))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        with db.connect() as conn:
            stored = conn.execute(sa.text("SELECT count(*) FROM customers WHERE business_id = :b"),
                                  {"b": killed}).scalar()
        mid_import += 0 < stored < ROWS
        if proc.returncode == 0:  # it finished before the kill: start a new file-sized round
            with db.begin() as conn:
                conn.execute(sa.text("UPDATE connections SET cursor = NULL WHERE business_id = :b"),
                             {"b": killed})
    assert mid_import >= 3, "too few kills landed while batches were being committed"
    assert _import(env, path, str(killed)).wait(timeout=240) == 0
    assert _import(env, path, str(clean)).wait(timeout=240) == 0

    killed_customers, killed_events, killed_dupes = _state(db, killed)
    clean_customers, clean_events, clean_dupes = _state(db, clean)
    assert killed_dupes == clean_dupes == 0
    assert len(clean_customers) == ROWS
    assert killed_customers == clean_customers
    assert len(clean_events) == ROWS
    assert killed_events == clean_events
