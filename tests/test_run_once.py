"""`run-once` and `customers add` through the command line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from journey_support import apply, make_business, sequence

from blippsync.connections import ensure_connection
from blippsync.database import Database


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "blippsync", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_a_failing_connection_does_not_stop_the_others(db: Database, cli_env, tiny_plugin: Path
                                                       ) -> None:
    good, bad = make_business(db, name="Good"), make_business(db, name="Bad")
    with db.begin() as conn:
        ensure_connection(conn, good, "tiny")
        ensure_connection(conn, bad, "tiny", settings={"fail": True})
    env = {**cli_env, "PYTHONPATH": os.pathsep.join([str(tiny_plugin), *sys.path])}
    out = _cli(env, "run-once", "--json")
    assert out.returncode == 1
    report = json.loads(out.stdout)
    by_business = {s["business_id"]: s for s in report["syncs"]}
    assert by_business[str(good)]["error"] is None and by_business[str(good)]["created"] == 2
    assert by_business[str(bad)]["error"] == "tiny: the remote said no"
    assert report["failed"] is True
    table = _cli(env, "run-once")  # the human summary names the failure
    assert "FAILED: tiny: the remote said no" in table.stdout and table.returncode == 1
    assert "Traceback" not in table.stderr


def test_run_once_filters_and_dry_run(db: Database, cli_env, tiny_plugin: Path) -> None:
    one, two = make_business(db), make_business(db)
    with db.begin() as conn:
        ensure_connection(conn, one, "tiny")
        ensure_connection(conn, two, "tiny")
    env = {**cli_env, "PYTHONPATH": os.pathsep.join([str(tiny_plugin), *sys.path])}
    dry = json.loads(_cli(env, "run-once", "--dry-run", "--json").stdout)
    assert [s["created"] for s in dry["syncs"]] == [2, 2] and dry["journeys"] == {}
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM customers")).scalar() == 0
    only = json.loads(_cli(env, "run-once", "--business", str(one), "--json").stdout)
    assert [s["business_id"] for s in only["syncs"]] == [str(one)]
    bad = _cli(env, "run-once", "--connector", "nope")
    assert bad.returncode == 2 and "no connector named 'nope'" in bad.stderr


def test_customers_add_with_event_starts_a_journey(db: Database, cli_env, tmp_path: Path) -> None:
    business = make_business(db)
    apply(db, business, sequence(trigger_source="manual"))
    out = _cli(cli_env, "customers", "add", "--business", str(business), "--name", "Dana Hand",
               "--email", "Dana@Hand.test", "--phone", "(312) 555-0142", "--event",
               "job_completed", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["events_emitted"] == 1
    again = json.loads(_cli(cli_env, "customers", "add", "--business", str(business), "--name",
                            "Dana Hand", "--email", "dana@hand.test", "--json").stdout)
    assert (again["created"], again["unchanged"]) == (0, 1)  # same person, same row
    env = {**cli_env, "BLIPPSYNC_CHANNELS_OUTBOX_DIR": str(tmp_path / "outbox")}
    report = json.loads(_cli(env, "run-once", "--json").stdout)
    assert report["journeys"]["routing"]["enrolled"] == 1
    with db.connect() as conn:
        row = conn.execute(sa.text("SELECT email, phone, source FROM customers")).one()
    assert tuple(row) == ("dana@hand.test", "+13125550142", "manual")
    bad = _cli(cli_env, "customers", "add", "--business", str(business), "--name", "X",
               "--event", "Job Completed")
    assert bad.returncode == 2 and "--event" in bad.stderr
