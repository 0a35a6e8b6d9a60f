"""Benchmark: importing a large CSV end to end, against a raw COPY of the same rows.

    python bench/bench_csv_import.py --rows 1000000 [--database-url URL]

Generates the file (streamed), creates a fresh database and a business, then times
1. `blippsync import csv` into an empty business (a subprocess: its peak RSS is measured),
2. the same import again (every row unchanged),
3. a raw `COPY` of the same rows into public.customers for another business,
and prints rows/s, the ratio of our time to the raw COPY's, and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from blippsync.testing.database import fresh_database  # noqa: E402

FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
         "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
        "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas"]
AREA = ["212", "312", "415", "512", "617", "713", "206", "303"]


def generate(path: Path, rows: int) -> None:
    rnd = random.Random(42)
    with path.open("w", newline="") as fh:
        fh.write("Customer ID,Name,Email,Phone\r\n")
        for i in range(rows):
            first, last = rnd.choice(FIRST), rnd.choice(LAST)
            phone = f"({rnd.choice(AREA)}) {rnd.randint(200, 999)}-{rnd.randint(0, 9999):04d}"
            email = f"{first.lower()}.{last.lower()}{i}@example.com"
            fh.write(f"C{i},{first} {last},{email},{phone}\r\n")


def import_csv(env: dict[str, str], path: Path, business: str) -> tuple[float, dict, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "blippsync", "import", "csv", str(path),
                          "--business", business, "--json"], env=env, capture_output=True,
                         text=True, check=False)
    seconds = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"import failed: {out.stderr or out.stdout}")
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, json.loads(out.stdout), max(peak_kb, before)


def raw_copy(url: str, path: Path, business: str) -> float:
    """COPY the same rows (already in COPY text form) into the same table: the ceiling."""
    staged = path.with_suffix(".copy")
    with path.open() as src, staged.open("w") as dst:
        next(src)
        for line in src:
            ext, name, email, phone = line.rstrip("\r\n").split(",")
            dst.write(f"{business}\tcsv\t{ext}\t{name}\t{email}\t{phone}\n")
    started = time.perf_counter()
    copy_sql = ("COPY public.customers (business_id, source, external_id, name, email, phone) "
                "FROM STDIN")
    with (
        psycopg.connect(url) as conn,
        conn.cursor() as cur,
        staged.open("rb") as fh,
        cur.copy(copy_sql) as copy,
    ):
        while chunk := fh.read(1 << 20):
            copy.write(chunk)
    seconds = time.perf_counter() - started
    staged.unlink()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--database-url", default=os.environ.get(
        "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, fresh_database(args.database_url) as url:
        path = Path(tmp) / "customers.csv"
        generate(path, args.rows)
        env = {**os.environ, "BLIPPSYNC_DATABASE_URL": url, "BLIPPSYNC_LOGGING_LEVEL": "WARNING",
               "BLIPPSYNC_SYNC_BATCH_SIZE": os.environ.get("BLIPPSYNC_SYNC_BATCH_SIZE", "10000")}
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(plain) as conn:
            ids = [conn.execute("INSERT INTO businesses (name, created_by) VALUES (%s, %s) "
                                "RETURNING id", (f"Bench {i}", "bench@example.com")).fetchone()[0]
                   for i in range(2)]
        first, summary, rss1 = import_csv(env, path, str(ids[0]))
        again, summary2, rss2 = import_csv(env, path, str(ids[0]))
        copy_seconds = raw_copy(plain, path, str(ids[1]))
        print(f"rows: {args.rows:,}  (machine: {os.cpu_count()} cores)")
        print(f"import (empty business): {first:.1f} s = {args.rows / first:,.0f} customers/s "
              f"(created {summary['created']:,}, rejected {summary['rejected']:,})")
        print(f"re-import (all unchanged): {again:.1f} s = {args.rows / again:,.0f} customers/s "
              f"(unchanged {summary2['unchanged']:,})")
        print(f"raw COPY of the same rows: {copy_seconds:.1f} s = "
              f"{args.rows / copy_seconds:,.0f} rows/s")
        print(f"ratio import / raw COPY: {first / copy_seconds:.2f}x")
        print(f"peak RSS of the import process: {max(rss1, rss2) / 1024:.0f} MB")


if __name__ == "__main__":
    main()
