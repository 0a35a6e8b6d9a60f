"""8 processes refreshing one connection at once against a token endpoint that rotates the
refresh token on every call and refuses reuse: no invalid_grant, and the latest token is
the one stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakes.intuit import fake_intuit
from fakes.qbo_kit import connected_business, qbo_config

from blippsync.database import Database
from blippsync.vault import load_keyring

PROCESSES = 8
ROUNDS = 200
WORKER = Path(__file__).parent / "fakes" / "race_worker.py"


@pytest.mark.slow
def test_eight_processes_two_hundred_rounds_zero_invalid_grant(tmp_path: Path, database_url: str,
                                                               db: Database) -> None:
    with fake_intuit() as (url, state):
        config = qbo_config(tmp_path, database_url, url)
        _, connection = connected_business(db, config, state.refresh_token)
        go = tmp_path / "go"
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
        procs = [subprocess.Popen([sys.executable, str(WORKER), str(config.path),
                                   str(connection.id), str(ROUNDS), str(go)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                  text=True) for _ in range(PROCESSES)]
        time.sleep(1.5)  # let every worker import and connect
        started = time.monotonic()
        go.write_text("go")
        results = []
        for p in procs:
            out, err = p.communicate(timeout=240)
            assert p.returncode == 0, err[-2000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
        elapsed = time.monotonic() - started
        assert state.invalid_grants == 0
        assert [r["error_count"] for r in results] == [0] * PROCESSES, results
        assert sum(r["refreshed"] for r in results) == PROCESSES * ROUNDS
        assert state.refreshes >= PROCESSES * ROUNDS  # each forced round rotated the token
        with db.connect() as conn:
            import sqlalchemy as sa

            stored, business = conn.execute(sa.text(
                "SELECT refresh_token, business_id FROM public.integrations_quickbooks")).one()
        from blippsync.vault.store import sealed_at

        at = sealed_at("integrations_quickbooks", "refresh_token", business, business)
        assert load_keyring(config).decrypt(stored, at) == state.refresh_token
        print(f"\n{PROCESSES}x{ROUNDS}: {state.refreshes} refreshes in {elapsed:.1f}s")
