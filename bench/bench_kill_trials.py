"""SIGKILL trials at random instants (tests/crash_trials.py), at the issue's sizes.

    TEST_DATABASE_URL=postgresql://postgres@127.0.0.1/test python bench/bench_kill_trials.py \
        [--trials 20] [--rows 200000] [--customers 5000] [--messages 400] \
        [--only csv|quickbooks|smtp]

- csv: a `rows`-row `import csv` killed at a random instant and re-run at once;
- quickbooks: a `customers`-customer backfill under the issue's fault mix (5% 429, 5% 5xx,
  3% SystemFault in a 200, 2% dropped connections, 20% of token answers lost) killed at a
  random instant, then `run-once` again;
- smtp: two `blippsync run` daemons sending `messages` emails through an aiosmtpd server
  taking 20 ms per message (batches of 40, chunks of 20, a 30 s send lease); one daemon
  killed at a random instant, another started; after the lease the dead daemon's chunk is
  `unknown`, and those the SMTP server never received are released by the operator path.

Each trial's final state is compared with a clean run: customers and events equal, no
message received twice, at most `journeys.in_flight_chunk` (20 here) unknown per kill.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from crash_trials import csv_trials, quickbooks_trials, smtp_trials  # noqa: E402

from blippsync.database import Database  # noqa: E402
from blippsync.testing.database import fresh_database, session_server_url  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=5_000)
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--only", choices=["csv", "quickbooks", "smtp"])
    args = parser.parse_args()
    runs = {
        "csv": lambda db, url, tmp: csv_trials(db, url, tmp, args.rows, args.trials, log=print),
        "quickbooks": lambda db, url, tmp: quickbooks_trials(db, url, tmp, args.customers,
                                                             args.trials, log=print),
        "smtp": lambda db, url, tmp: smtp_trials(db, url, tmp, args.messages, args.trials,
                                                 chunk=20, smtp_delay=0.02, log=print),
    }
    results = []
    for name, run in runs.items():
        if args.only not in (None, name):
            continue
        with session_server_url() as server, fresh_database(server) as url, \
                tempfile.TemporaryDirectory() as tmp:
            db = Database(url, pool_size=2)
            try:
                report = run(db, url, Path(tmp))
            finally:
                db.dispose()
        results.append(report)
        for problem in report.problems:
            print(f"  {name}: {problem}")
    print("\nresults:")
    for report in results:
        print(f"  {report.line()}")


if __name__ == "__main__":
    main()
