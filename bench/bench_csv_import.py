"""Benchmark: CSV imports at several sizes, with and without events, against raw COPY and dlt.

    python bench/bench_csv_import.py                                # quick: 25k and 100k rows
    python bench/bench_csv_import.py --sizes 25000,100000,200000,1000000 --reps 3

For each kind of file (`dates`: a job-date column, so every row also emits an event;
`plain`: customers only) and each size, in a fresh database on TEST_DATABASE_URL's
server (dropped afterwards):
1. `blippsync import csv` into an empty business (a subprocess; peak RSS measured),
2. the same import again (every row unchanged, every event already known),
3. a raw `COPY` of the same rows (customers, and the events) into another business:
   the ceiling,
4. the peer a data engineer would pick, dlt's merge load of the same file into the same
   PostgreSQL, first load and re-load (skipped with a message when dlt is not installed
   for `--dlt-python`; `pip install -e '.[bench]'` installs it).
Rows/s are printed per size, so a cost that grows faster than the file shows at a glance
(the last column compares each size's throughput, net of the command's fixed start-up
cost measured on a header-only file, with the smallest size's).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from blippsync.testing.database import fresh_database  # noqa: E402

FIRST = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David",
         "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica"]
LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
        "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas"]
AREA = ["212", "312", "415", "512", "617", "713", "206", "303"]
KINDS = ("dates", "plain")
DATE_SPAN_DAYS = 400  # jobs of the last 400 days: most historical, some recent (pending)

DLT_LOAD = textwrap.dedent("""
    import csv, sys, time
    import dlt
    path, url, dataset = sys.argv[1:4]
    def rows():
        with open(path, newline="") as fh:
            yield from csv.DictReader(fh)
    pipeline = dlt.pipeline(pipeline_name=dataset, dataset_name=dataset,
                            destination=dlt.destinations.postgres(url),
                            pipelines_dir=sys.argv[4])
    for _ in range(2):  # first load, then the same file again (merge: all unchanged)
        started = time.perf_counter()
        pipeline.run(rows(), table_name="customers", write_disposition="merge",
                     primary_key="customer_id")
        print(time.perf_counter() - started, flush=True)
""")


@dataclass
class Result:
    kind: str
    rows: int
    first: list[float] = field(default_factory=list)
    again: list[float] = field(default_factory=list)
    copy: list[float] = field(default_factory=list)
    dlt_first: list[float] = field(default_factory=list)
    dlt_again: list[float] = field(default_factory=list)
    client_cpu: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    summary: dict = field(default_factory=dict)

    def rate(self, seconds: list[float]) -> float | None:
        return self.rows / statistics.median(seconds) if seconds else None


def generate(path: Path, rows: int, dates: bool) -> None:
    rnd = random.Random(42)
    today = date.today()
    with path.open("w", newline="") as fh:
        fh.write("Customer ID,Name,Email,Phone" + (",Job Date" if dates else "") + "\r\n")
        for i in range(rows):
            first, last = rnd.choice(FIRST), rnd.choice(LAST)
            phone = f"({rnd.choice(AREA)}) {rnd.randint(200, 999)}-{rnd.randint(0, 9999):04d}"
            email = f"{first.lower()}.{last.lower()}{i}@example.com"
            job = f",{today - timedelta(days=rnd.randint(1, DATE_SPAN_DAYS))}" if dates else ""
            fh.write(f"C{i},{first} {last},{email},{phone}{job}\r\n")


def import_csv(env: dict[str, str], path: Path, business: str) -> tuple[float, float, dict, int]:
    """(seconds, client CPU seconds, summary, peak RSS KB of any import so far)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "blippsync", "import", "csv", str(path),
                          "--business", business, "--json"], env=env, capture_output=True,
                         text=True, check=False)
    seconds = time.perf_counter() - started
    if out.returncode != 0:
        raise SystemExit(f"import failed: {out.stderr or out.stdout}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return seconds, cpu, json.loads(out.stdout), after.ru_maxrss


def raw_copy(url: str, path: Path, business: str, dates: bool) -> float:
    """COPY the same rows (already in COPY text form) into the same tables: the ceiling."""
    customers, events = path.with_suffix(".customers"), path.with_suffix(".events")
    now = datetime.now(UTC)
    with path.open() as src, customers.open("w") as cdst, events.open("w") as edst:
        next(src)
        for line in src:
            ext, name, email, phone, *job = line.rstrip("\r\n").split(",")
            cid = uuid.uuid4()
            cdst.write(f"{cid}\t{business}\tcsv\t{ext}\t{name}\t{email}\t{phone}\n")
            if dates:
                historical = date.fromisoformat(job[0]) < (now - timedelta(days=14)).date()
                edst.write(f"{business}\tcsv\tjob_completed\t{cid}\t{ext}\t{job[0]} 12:00Z\t"
                           f"csv:{ext}:job_completed:{job[0]}\t{'t' if historical else 'f'}\t"
                           f"{'historical' if historical else 'pending'}\n")
    started = time.perf_counter()
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        for staged, copy_sql in (
                (customers, "COPY public.customers (id, business_id, source, external_id, name, "
                            "email, phone) FROM STDIN"),
                (events, "COPY public.trigger_events (business_id, source, event_type, "
                         "customer_id, external_customer_id, occurred_at, dedupe_key, "
                         "historical, routing_state) FROM STDIN")):
            with staged.open("rb") as fh, cur.copy(copy_sql) as copy:
                while chunk := fh.read(1 << 20):
                    copy.write(chunk)
    seconds = time.perf_counter() - started
    customers.unlink()
    events.unlink()
    return seconds


def dlt_available(python: str) -> bool:
    return subprocess.run([python, "-c", "import dlt, psycopg2"], capture_output=True,
                          check=False).returncode == 0


def dlt_merge(python: str, url: str, path: Path, dataset: str, workdir: Path
              ) -> tuple[float, float]:
    script = workdir / "dlt_load.py"
    script.write_text(DLT_LOAD)
    parsed = make_url(url)
    if not parsed.password:  # dlt insists on one; a trust or peer login ignores it
        url = parsed.set(password="unused").render_as_string(hide_password=False)
    out = subprocess.run([python, str(script), str(path), url, dataset, str(workdir / "dlt")],
                         capture_output=True, text=True, check=False,
                         env={**os.environ, "RUNTIME__LOG_LEVEL": "WARNING"})
    if out.returncode != 0:
        raise SystemExit(f"dlt load failed: {out.stderr[-2000:]}")
    first, again = (float(x) for x in out.stdout.split())
    return first, again


def new_business(url: str, name: str) -> str:
    with psycopg.connect(url) as conn:
        return str(conn.execute("INSERT INTO businesses (name, created_by) VALUES (%s, %s) "
                                "RETURNING id", (name, "bench@example.com")).fetchone()[0])


def run(args: argparse.Namespace) -> tuple[list[Result], float]:
    """Every (kind, size) result, and the start-up seconds of one import command."""
    results = []
    peer = None if args.no_peer else args.dlt_python
    if peer and not dlt_available(peer):
        print(f"dlt peer skipped: `import dlt, psycopg2` fails for {peer} "
              "(pip install -e '.[bench]', or pass --dlt-python of an environment that has it)")
        peer = None
    with tempfile.TemporaryDirectory() as tmp, fresh_database(args.database_url) as url:
        plain = url.replace("postgresql+psycopg://", "postgresql://")
        env = {**os.environ, "BLIPPSYNC_DATABASE_URL": url, "BLIPPSYNC_LOGGING_LEVEL": "WARNING",
               "BLIPPSYNC_SYNC_BATCH_SIZE": str(args.batch_size)}
        empty = Path(tmp) / "empty.csv"
        empty.write_text("Customer ID,Name,Email,Phone\r\n")
        startup = statistics.median(
            import_csv(env, empty, new_business(plain, "startup"))[0] for _ in range(3))
        for kind in args.kinds:
            for rows in args.sizes:
                path = Path(tmp) / f"{kind}-{rows}.csv"
                generate(path, rows, kind == "dates")
                result = Result(kind, rows)
                for rep in range(args.reps):
                    business = new_business(plain, f"Bench {kind} {rows} {rep}")
                    seconds, cpu, result.summary, rss = import_csv(env, path, business)
                    result.first.append(seconds)
                    result.client_cpu.append(cpu)
                    seconds, _cpu, again, rss = import_csv(env, path, business)
                    result.again.append(seconds)
                    assert again["unchanged"] == rows - result.summary["rejected"], again
                    result.peak_rss_mb = max(result.peak_rss_mb, rss / 1024)
                    result.copy.append(raw_copy(plain, path, new_business(plain, "copy"),
                                                kind == "dates"))
                    if peer:
                        first, again_s = dlt_merge(peer, plain, path, f"dlt_{kind}_{rows}_{rep}",
                                                   Path(tmp))
                        result.dlt_first.append(first)
                        result.dlt_again.append(again_s)
                    print(f"  {kind} {rows:,} rep {rep + 1}: import {result.first[-1]:.1f} s, "
                          f"again {result.again[-1]:.1f} s, COPY {result.copy[-1]:.1f} s"
                          + (f", dlt {result.dlt_first[-1]:.1f} s" if peer else ""), flush=True)
                path.unlink()
                results.append(result)
    return results, startup


def _fmt(value: float | None, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def report(results: list[Result], startup: float, args: argparse.Namespace) -> None:
    print(f"\nmachine: {os.cpu_count()} cores; batch size {args.batch_size}; median of "
          f"{args.reps} run(s); rows/s = file rows / wall seconds of the whole command, whose "
          f"start-up (an empty file) takes {startup:.1f} s")
    header = ("kind", "rows", "import/s", "again/s", "COPY/s", "import÷COPY", "dlt/s",
              "dlt again/s", "us÷dlt", "vs smallest")
    print(" | ".join(header))
    print(" | ".join("---" for _ in header))
    for kind in args.kinds:
        mine = [r for r in results if r.kind == kind]
        net = {r.rows: r.rows / max(statistics.median(r.first) - startup, 1e-3) for r in mine}
        base = net[mine[0].rows] if mine else None
        for r in mine:
            first, again, copy = r.rate(r.first), r.rate(r.again), r.rate(r.copy)
            dlt = r.rate(r.dlt_first)
            print(" | ".join([
                kind, f"{r.rows:,}", _fmt(first), _fmt(again), _fmt(copy),
                _fmt(copy / first if first and copy else None, ".2f") + "x",
                _fmt(dlt), _fmt(r.rate(r.dlt_again)),
                _fmt(first / dlt if first and dlt else None, ".2f") + "x",
                _fmt(100 * net[r.rows] / base if base else None, ".0f") + "%"]))
    print("\n(import÷COPY: how many times longer than raw COPY; us÷dlt: our rows/s over "
          "dlt's; vs smallest: this size's import rows/s net of start-up as a share of the "
          "smallest size's: a superlinear cost shows as a falling share)")
    for r in results:
        s = r.summary
        print(f"{r.kind} {r.rows:,}: created {s.get('created', 0):,}, events emitted "
              f"{s.get('events_emitted', 0):,} + historical {s.get('events_historical', 0):,}; "
              f"client CPU {statistics.median(r.client_cpu):.1f} s of "
              f"{statistics.median(r.first):.1f} s; peak RSS {r.peak_rss_mb:.0f} MB")


def _kinds(text: str) -> list[str]:
    """`dates`, `plain`, a comma list of them, or `both`; anything else is an error."""
    kinds = list(KINDS) if text == "both" else text.split(",")
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown kind(s) {', '.join(unknown)}: "
                                         f"use {', '.join(KINDS)} or both")
    return kinds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="25000,100000",
                        type=lambda s: [int(x) for x in s.split(",")],
                        help="comma-separated row counts (default 25000,100000)")
    parser.add_argument("--kinds", default=",".join(KINDS), type=_kinds,
                        help="dates (a job date on every row: one event each), plain, or both "
                             "(default: both)")
    parser.add_argument("--reps", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=10000)
    parser.add_argument("--dlt-python", default=sys.executable,
                        help="interpreter with dlt[postgres] installed (default: this one)")
    parser.add_argument("--no-peer", action="store_true", help="skip the dlt comparison")
    parser.add_argument("--database-url", default=os.environ.get(
        "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    report(*run(args), args)


if __name__ == "__main__":
    main()
