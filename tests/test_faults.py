"""Faults the real services produce, against loopback fakes of QuickBooks and Jobber
(tests/fakes/faults.py): every backfill finishes in one `run-once`, with the stored state
equal to the fake's data and exactly one event per fact. The full-size figures come from
bench/bench_faults.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from fakes.fault_worlds import blippsync, differences, jobber_world, quickbooks_world
from fakes.faults import FaultPlan

from blippsync.database import Database


def FAULTS_X2(seed: int) -> FaultPlan:  # noqa: N802 (reads as a constant)
    return FaultPlan(rate_429=0.10, rate_5xx=0.10, rate_fault200=0.06, rate_drop=0.04,
                     rate_slow=0.04, slow_seconds=1.2, seed=seed)


@pytest.mark.slow
def test_quickbooks_backfill_under_the_issue_fault_mix_finishes_in_one_run_once(
        tmp_path: Path, database_url: str, db: Database) -> None:
    # the issue's mix, doubled so that this small run meets every kind: 10% 429, 10% 5xx,
    # 6% SystemFault in a 200, 4% dropped, plus 4% slow answers past the client's timeout;
    # access tokens expire every 6 s and 30% of refresh answers are lost
    faults = FAULTS_X2(seed=3)
    with quickbooks_world(tmp_path, database_url, db, 2000, faults, token_drop_rate=0.3,
                          token_lifetime_seconds=6, backoff_seconds=0.2, page_size=50,
                          timeout_seconds=0.8, use_cdc=False) as (world, state):
        out = blippsync(world.config_path, "run-once", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["failed"] is False
    assert differences(db, world) == []
    # every kind of fault was met (and absorbed) in this one run
    assert all(faults.injected[k] for k in ("429", "5xx", "fault200", "drop", "slow")), \
        faults.summary()
    assert state.refreshes >= 2 and state.invalid_grants == 0


@pytest.mark.slow
def test_jobber_backfill_under_the_issue_fault_mix_finishes_in_one_run_once(
        tmp_path: Path, database_url: str, db: Database) -> None:
    faults = FAULTS_X2(seed=5)
    token_faults = FaultPlan(rate_5xx=0.5, seed=1)  # the token endpoint fails too (unsent)
    with jobber_world(tmp_path, database_url, db, 500, faults, token_faults,
                      restore_rate=50_000, timeout_seconds=0.8) as (world, fake):
        with world.config_path.open("a") as f:
            f.write("page_size = 20\n[plugins.jobber]\nbackoff_seconds = 0.2\n")
        out = blippsync(world.config_path, "run-once", "--json")
    assert out.returncode == 0, out.stdout + out.stderr
    assert differences(db, world) == []
    assert all(faults.injected[k] for k in ("429", "5xx", "fault200", "drop", "slow")), \
        faults.summary()
    assert fake.reuse_rejections == 0


@pytest.mark.slow
def test_a_pass_that_fails_keeps_every_page_it_read(tmp_path: Path, database_url: str,
                                                    db: Database) -> None:
    """Intuit fails for good after page 7 of 10: the pass fails (exit 1) and the 7 pages
    read are stored with their cursor; the next run goes on from there."""
    with quickbooks_world(tmp_path, database_url, db, 500, page_size=50, use_cdc=False,
                          max_retries=1, backoff_seconds=0.05) as (world, state):
        pages = {"n": 0}
        original = type(state).__dict__.get("faults")
        assert original is None
        from fakes.faults import FaultPlan as Plan

        class FailAfterSeven(Plan):
            def choose(self) -> str | None:
                pages["n"] += 1
                return "5xx" if pages["n"] > 7 else None

        state.faults = FailAfterSeven()
        out = blippsync(world.config_path, "run-once", "--json")
        assert out.returncode == 1
        report = json.loads(out.stdout)
        assert "gave up after 2 tries" in report["syncs"][0]["error"]
        with db.connect() as conn:
            stored = conn.execute(sa.text("SELECT count(*) FROM public.customers")).scalar_one()
            cursor = conn.execute(sa.text("SELECT cursor FROM public.connections WHERE id = :i"),
                                  {"i": world.connection_id}).scalar_one()
        assert stored == 7 * 50  # not 0: the pages read before the failure are kept
        assert cursor["Customer"]["ids"] == ["350"]
        state.faults = None
        again = blippsync(world.config_path, "run-once", "--json")
    assert again.returncode == 0, again.stdout + again.stderr
    assert differences(db, world) == []
