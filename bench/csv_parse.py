"""How fast the csv connector parses, alone (no database): rows/s of sync() and peak RSS.

    python bench/csv_parse.py [ROWS] [--id-column] [--no-dates]

Generates ROWS rows (default 1,000,000) in a temporary folder: a realistic export with
derived ids (no id column) and a date column, the slower path.
"""

from __future__ import annotations

import csv
import logging
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from blippsync.connector import ConnectorContext
from blippsync.records import CustomerRecord, EventRecord, Rejected
from connectors.csv import CsvConnector
from connectors.csv.filefacts import inspect_file


def write_file(path: Path, rows: int, id_column: bool, dates: bool) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        header = ["Full Name", "Email", "Phone", "Address", "City", "State", "Zip", "Tags"]
        header = (["Customer ID"] if id_column else []) + header + (["Job Date"] if dates else [])
        w.writerow(header)
        for i in range(rows):
            row = [f"Customer {i}", f"person{i}@example.com", f"+1555{i:07d}",
                   f"{i % 9999} Main St, Apt {i % 7}", "Springfield", "IL", "62704",
                   "residential" if i % 3 else "vip, commercial"]
            if id_column:
                row.insert(0, str(100000 + i))
            if dates:
                row.append(f"{1 + i % 12}/{1 + i % 28}/2024")
            w.writerow(row)


def main() -> None:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    rows = int(args[0]) if args else 1_000_000
    with tempfile.TemporaryDirectory() as tmp, httpx.Client() as http:
        path = Path(tmp) / "customers.csv"
        t0 = time.perf_counter()
        write_file(path, rows, "--id-column" in sys.argv, "--no-dates" not in sys.argv)
        print(f"generated {rows:,} rows, {path.stat().st_size / 1e6:.0f} MB "
              f"in {time.perf_counter() - t0:.1f}s")
        ctx = ConnectorContext(uuid.uuid4(), None, "", {"timezone": "America/Chicago"}, None,
                               http, logging.getLogger("bench"), options={"path": path})
        t0 = time.perf_counter()
        inspect_file(path)
        print(f"of which the hash + encoding pass: {time.perf_counter() - t0:.2f}s")
        counts = {CustomerRecord: 0, EventRecord: 0, Rejected: 0}
        t0, cpu0 = time.perf_counter(), time.process_time()
        for record in CsvConnector().sync(ctx):
            kind = type(record)
            if kind in counts:
                counts[kind] += 1
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"sync(): {elapsed:.2f}s, {rows / elapsed:,.0f} rows/s, "
          f"{elapsed / rows * 1e6:.2f} us/row; customers={counts[CustomerRecord]:,} "
          f"events={counts[EventRecord]:,} rejected={counts[Rejected]:,}; "
          f"CPU {cpu:.2f}s ({rows / cpu:,.0f} rows per CPU-second); peak RSS {rss_mb:.0f} MB")


if __name__ == "__main__":
    main()
