"""Backfills under the issue's fault mix, each in ONE `blippsync run-once`.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1/test python bench/bench_faults.py \
        [--customers 20000] [--clients 5000] [--only quickbooks|jobber] [--page-size 1000]

Loopback fakes of QuickBooks and Jobber (tests/fakes) answer every API call with 5% 429
(Retry-After as seconds or an HTTP date), 5% 5xx, 3% faults inside an HTTP 200 (QuickBooks
SystemFault, Jobber INTERNAL_SERVER_ERROR) and 2% dropped connections; QuickBooks access
tokens expire every 60 s and 20% of refresh answers are lost after the rotation. Jobber's
cost bucket is the documented one (10,000 points, 500/s). Prints, per provider: the
run's exit code and time, the calls and faults met, and whether the stored state equals
the fake's data with exactly one event per fact.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from fakes.fault_worlds import blippsync, differences, jobber_world, quickbooks_world  # noqa: E402
from fakes.faults import FaultPlan  # noqa: E402

from blippsync.database import Database  # noqa: E402
from blippsync.testing.database import fresh_database, session_server_url  # noqa: E402


def run(name: str, world_factory, tmp: Path) -> None:  # type: ignore[no-untyped-def]
    with session_server_url() as server, fresh_database(server) as url:
        db = Database(url, pool_size=2)
        try:
            with world_factory(tmp, url, db) as (world, fake):
                started = time.monotonic()
                out = blippsync(world.config_path, "run-once", "--json", timeout=3600)
                seconds = time.monotonic() - started
            plan = fake.faults
            found = differences(db, world)
            report = json.loads(out.stdout) if out.stdout.strip().startswith("{") else {}
            sync = (report.get("syncs") or [{}])[0]
            print(f"{name}: exit {out.returncode} in {seconds:.0f}s; {plan.summary()}; "
                  f"stored {sync.get('created')} customers and "
                  f"{(sync.get('events_emitted') or 0) + (sync.get('events_historical') or 0)} "
                  f"events (fake: {len(world.customers)} and {len(world.facts)} facts); "
                  + ("state equal to the fake's, one event per fact" if not found
                     else f"DIFFERENT: {found}"), flush=True)
            if out.returncode:
                print(out.stderr[-3000:])
        finally:
            db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=5_000)
    parser.add_argument("--only", choices=["quickbooks", "jobber"])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--page-size", type=int, default=1000,
                        help="QuickBooks MAXRESULTS (smaller: more calls, more faults met)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.only in (None, "quickbooks"):
            run(f"quickbooks {args.customers} customers", lambda t, u, d: quickbooks_world(
                t / "qbo", u, d, args.customers, FaultPlan.issue_mix(seed=args.seed),
                token_drop_rate=0.2, token_lifetime_seconds=60, use_cdc=False,
                page_size=args.page_size), Path(tmp))
        if args.only in (None, "jobber"):
            run(f"jobber {args.clients} clients", lambda t, u, d: jobber_world(
                t / "jobber", u, d, args.clients, FaultPlan.issue_mix(seed=args.seed)),
                Path(tmp))


if __name__ == "__main__":
    main()
