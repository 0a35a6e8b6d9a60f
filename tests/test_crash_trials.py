"""CI-sized SIGKILL trials (tests/crash_trials.py); the issue's sizes, 20 trials each,
run as bench/bench_kill_trials.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from crash_trials import csv_trials, quickbooks_trials, smtp_trials

from blippsync.database import Database


@pytest.mark.slow
def test_csv_import_killed_then_rerun_at_once_equals_a_clean_import(
        db: Database, database_url: str, tmp_path: Path) -> None:
    report = csv_trials(db, database_url, tmp_path, rows_n=5_000, trials=2)
    assert report.problems == [] and report.reruns_failed == 0, report.line()
    assert report.trials_differing == 0


@pytest.mark.slow
def test_quickbooks_backfill_under_faults_killed_then_run_again_equals_the_source(
        db: Database, database_url: str, tmp_path: Path) -> None:
    report = quickbooks_trials(db, database_url, tmp_path, customers=1500, trials=2,
                               page_size=100)
    assert report.problems == [] and report.trials_differing == 0, report.line()


@pytest.mark.slow
def test_daemons_sending_through_slow_smtp_killed_send_nothing_twice(
        db: Database, database_url: str, tmp_path: Path) -> None:
    report = smtp_trials(db, database_url, tmp_path, messages=120, trials=2, chunk=10,
                         smtp_delay=0.02, lease_seconds=10, batch=30)
    assert report.problems == [], report.line()
    assert report.sent_twice == 0
    assert all(n <= 10 for n in report.unknown_per_kill)  # journeys.in_flight_chunk
