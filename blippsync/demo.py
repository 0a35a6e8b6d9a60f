"""The quickstart demo: the whole path on the embedded database in one command.

It applies `examples/demo-sequences.toml` (creating its business), drops the example
export `examples/customers.csv` into that business's csv inbox and runs one ordinary
pass (`run-once`): customers imported, job_completed events emitted, customers enrolled,
first messages rendered into the outbox. The example's job dates are moved so the newest
was yesterday, because jobs older than the backfill horizon (14 days) rightly start no
journey, and a file shipped in a repository only gets older.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

from blippsync.app import App
from blippsync.errors import InputError
from blippsync.inbox import drop_complete_file
from blippsync.migrations import shipped_dir
from blippsync.plugins import Plugins
from blippsync.runner import PassFilter, PassReport, run_once

EXAMPLES_DIR = shipped_dir("examples")
SEQUENCES_FILE = "demo-sequences.toml"
CUSTOMERS_FILE = "customers.csv"
DATE_COLUMN = "Completed At"
# the most instructive story: a customer without an email address, else anyone
_EXAMPLE_CUSTOMER = sa.text("SELECT id, name FROM public.customers "
                            "WHERE business_id = :business_id "
                            "ORDER BY email IS NOT NULL, name LIMIT 1")


@dataclass(frozen=True)
class DemoResult:
    business_id: str
    business_created: bool
    sequences: list[str]
    inbox_file: Path
    report: PassReport
    outbox_dir: Path
    example_customer: tuple[str, str] | None  # (id, name) worth an `explain`


def run_demo(app: App, plugins: Plugins, examples: Path = EXAMPLES_DIR,
             now: datetime | None = None) -> DemoResult:
    from blippsync.journeys.apply import apply_sequence_file
    from blippsync.journeys.definitions import load_sequence_file

    for name in (SEQUENCES_FILE, CUSTOMERS_FILE):
        if not (examples / name).is_file():
            raise InputError(f"{examples / name}: the demo needs this example file")
    db = app.ready_db()
    applied = apply_sequence_file(db, load_sequence_file(examples / SEQUENCES_FILE))
    business = str(applied.business_id)
    inbox = app.config.resolve_path("csv.inbox_dir") / business
    inbox.mkdir(parents=True, exist_ok=True)
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%S")
    target = inbox / f"demo-customers-{stamp}.csv"
    drop_complete_file(target, recent_copy((examples / CUSTOMERS_FILE).read_text(
        encoding="utf-8"), now or datetime.now(UTC)), app.config["csv.inbox_settle_seconds"])
    report = run_once(app, plugins, PassFilter())
    with db.connect() as conn:
        row = conn.execute(_EXAMPLE_CUSTOMER, {"business_id": applied.business_id}).first()
    return DemoResult(business, applied.business_created, [s.name for s in applied.sequences],
                      target, report, app.config.resolve_path("channels.outbox_dir") / business,
                      (str(row.id), row.name) if row else None)


def recent_copy(text: str, now: datetime) -> str:
    """The CSV with its dates moved by whole days, so its newest job was yesterday (the
    same shift all day: running the demo again the same day adds no new job)."""
    rows = list(csv.reader(io.StringIO(text)))
    header, body = rows[0], rows[1:]
    if DATE_COLUMN not in header:
        return text
    col = header.index(DATE_COLUMN)
    dates = [_parse(r[col]) for r in body if len(r) > col and r[col]]
    if not dates:
        return text
    shift = timedelta(days=(now.date() - max(dates).date()).days - 1)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in body:
        if len(row) > col and row[col]:
            row[col] = (_parse(row[col]) + shift).isoformat(timespec="seconds")
        writer.writerow(row)
    return out.getvalue()


def _parse(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
