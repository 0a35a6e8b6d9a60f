"""Benchmark: where an import's time goes, statement by statement, and what each table costs.

    python bench/bench_import_statements.py                 # 100k rows with job dates
    python bench/bench_import_statements.py --rows 200000 --kind plain --batch-size 5000

1. Runs `blippsync import csv` in this process on a generated file (bench_csv_import's
   data) into a fresh database on TEST_DATABASE_URL's server, timing every statement the
   import sends (wall seconds as the client sees them, summed per statement) and every
   staging COPY. A statement whose share grows with the rows stored is the first suspect
   of a superlinear import; a fixed cost per batch shows as a share that falls with
   --batch-size.
2. Then, with --tables, what the schema itself costs: a COPY of the same rows
   into customers and trigger_events as they are, then without their triggers (foreign key
   checks), and without each secondary index in turn (each variant in a fresh database,
   best of two). This is the floor under any loader that keeps those tables' guarantees.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy import event

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import bench_csv_import  # noqa: E402

import blippsync.batch_writer as batch_writer  # noqa: E402
from blippsync.testing.database import fresh_database  # noqa: E402

Totals = dict[str, list[float]]  # statement -> [count, seconds]


def _label(statement: str) -> str:
    """A statement's first words after its comments: enough to tell them apart."""
    lines = [line for line in statement.splitlines() if not line.strip().startswith("--")]
    return " ".join(" ".join(lines).split())[:80]


def timed_import(url: str, path: Path, business: str, batch_size: int) -> tuple[float, Totals]:
    totals: Totals = collections.defaultdict(lambda: [0, 0.0])

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info["started"] = time.perf_counter()

    def after(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        entry = totals[_label(statement)]
        entry[0] += 1
        entry[1] += time.perf_counter() - conn.info.pop("started")

    copy = batch_writer._copy

    def timed_copy(conn: sa.Connection, table: str, columns: tuple[str, ...], rows: Any) -> None:
        started = time.perf_counter()
        copy(conn, table, columns, rows)
        entry = totals[f"COPY {table} (staging)"]
        entry[0] += 1
        entry[1] += time.perf_counter() - started

    event.listen(sa.engine.Engine, "before_cursor_execute", before)
    event.listen(sa.engine.Engine, "after_cursor_execute", after)
    batch_writer._copy = timed_copy
    os.environ.update(BLIPPSYNC_DATABASE_URL=url, BLIPPSYNC_LOGGING_LEVEL="WARNING",
                      BLIPPSYNC_SYNC_BATCH_SIZE=str(batch_size))
    from blippsync.cli import cli
    started = time.perf_counter()
    try:
        cli.main(["import", "csv", str(path), "--business", business, "--json"],
                 prog_name="blippsync", standalone_mode=False, obj={"plugins": _plugins()})
    finally:
        batch_writer._copy = copy
        event.remove(sa.engine.Engine, "before_cursor_execute", before)
        event.remove(sa.engine.Engine, "after_cursor_execute", after)
    return time.perf_counter() - started, totals


def _plugins() -> Any:
    from blippsync.plugins import load_plugins
    return load_plugins()


def report_statements(seconds: float, totals: Totals, rows: int) -> None:
    print(f"\nimport of {rows:,} rows: {seconds:.2f} s ({rows / seconds:,.0f} rows/s)")
    print("seconds | share | calls | us/row | statement")
    print("--- | --- | --- | --- | ---")
    for label, (calls, spent) in sorted(totals.items(), key=lambda kv: -kv[1][1])[:20]:
        print(f"{spent:.3f} | {100 * spent / seconds:.0f}% | {calls:.0f} | "
              f"{1e6 * spent / rows:.1f} | {label}")


def table_costs(admin_url: str, rows: int, workdir: Path) -> None:
    """COPY into the real tables, then without each part of what they enforce."""
    business = uuid.uuid4()
    customers, events = workdir / "customers.tsv", workdir / "events.tsv"
    with customers.open("w") as c, events.open("w") as e:
        for i in range(rows):
            cid = uuid.uuid4()
            c.write(f"{cid}\t{business}\tcsv\tC{i}\tPerson {i} Smith\tp{i}@example.com\t"
                    f"+1212{3000000 + i}\n")
            e.write(f"{uuid.uuid4()}\t{business}\tcsv\tjob_completed\t{cid}\tC{i}\t"
                    f"2026-01-01 12:00Z\tcsv:C{i}:2026-01-01\tt\thistorical\n")
    copy_customers = ("COPY customers (id, business_id, source, external_id, name, email, "
                      "phone) FROM STDIN", customers)
    copy_events = ("COPY trigger_events (id, business_id, source, event_type, customer_id, "
                   "external_customer_id, occurred_at, dedupe_key, historical, routing_state) "
                   "FROM STDIN", events)

    def load(conn: psycopg.Connection, statement: tuple[str, Path]) -> None:
        with statement[1].open("rb") as fh, conn.cursor() as cur, cur.copy(statement[0]) as cp:
            while chunk := fh.read(1 << 20):
                cp.write(chunk)

    def secondary_indexes(conn: psycopg.Connection, table: str) -> list[tuple[str, str | None]]:
        """(index, the constraint it backs, if any) of every index but the primary key."""
        return [(r[0], r[1]) for r in conn.execute(
            "SELECT i.relname, k.conname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
            "LEFT JOIN pg_constraint k ON k.conindid = x.indexrelid AND k.conrelid = x.indrelid "
            "AND k.contype IN ('u', 'x') "
            "WHERE x.indrelid = %s::regclass AND NOT x.indisprimary ORDER BY 1", (table,))]

    def drop(conn: psycopg.Connection, table: str, index: str, constraint: str | None) -> None:
        if constraint:  # and the other tables' keys that reference it
            conn.execute(sql.SQL("ALTER TABLE {} DROP CONSTRAINT {} CASCADE").format(
                sql.Identifier(table), sql.Identifier(constraint)))
        else:
            conn.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(index)))

    def variant(table: str, label: str, setup: Callable[[psycopg.Connection], None]) -> None:
        best = float("inf")
        for _ in range(2):
            with fresh_database(admin_url) as url, \
                    psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
                conn.execute("SET session_replication_role = replica")  # a business, unchecked
                conn.execute("INSERT INTO businesses (id, name, created_by) "
                             "VALUES (%s, 'bench', 'bench@example.com')", (business,))
                conn.execute("SET session_replication_role = origin")
                if table == "trigger_events":
                    load(conn, copy_customers)
                setup(conn)
                conn.commit()
                started = time.perf_counter()
                load(conn, copy_customers if table == "customers" else copy_events)
                conn.commit()
                best = min(best, time.perf_counter() - started)
        print(f"{table} | {label} | {best:.2f} | {rows / best:,.0f} | {1e6 * best / rows:.1f}",
              flush=True)

    print(f"\nCOPY of {rows:,} rows (best of 2, each in a fresh database)")
    print("table | variant | seconds | rows/s | us/row")
    print("--- | --- | --- | --- | ---")
    with fresh_database(admin_url) as url, \
            psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        indexes = {t: secondary_indexes(conn, t) for t in ("customers", "trigger_events")}
    for table in ("customers", "trigger_events"):
        variant(table, "as it is", lambda conn: None)
        variant(table, "no triggers (foreign key checks)", lambda conn, t=table: conn.execute(
            sql.SQL("ALTER TABLE {} DISABLE TRIGGER ALL").format(sql.Identifier(t))))
        for index, constraint in indexes[table]:
            variant(table, f"without {index}",
                    lambda conn, t=table, i=index, k=constraint: drop(conn, t, i, k))
    customers.unlink()
    events.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--kind", choices=bench_csv_import.KINDS, default="dates")
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--tables", action="store_true",
                        help="also measure what each table's triggers and indexes cost")
    parser.add_argument("--database-url", default=os.environ.get(
        "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    args = parser.parse_args()
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"bench-statements-{os.getpid()}"
    workdir.mkdir()
    try:
        path = workdir / "import.csv"
        bench_csv_import.generate(path, args.rows, args.kind == "dates")
        with fresh_database(args.database_url) as url:
            plain = url.replace("postgresql+psycopg://", "postgresql://")
            business = bench_csv_import.new_business(plain, "statements")
            seconds, totals = timed_import(url, path, business, args.batch_size)
        report_statements(seconds, totals, args.rows)
        if args.tables:
            table_costs(args.database_url, args.rows, workdir)
    finally:
        for leftover in workdir.iterdir():
            leftover.unlink()
        workdir.rmdir()


if __name__ == "__main__":
    main()
