"""The csv connector: customers (and optional completed jobs) from a spreadsheet export.

A pure producer: `sync` reads the file at `ctx.options["path"]`, streaming, and yields
customer and event records, rejections with their line, and checkpoints that let an
interrupted import resume where it stopped. docs/csv.md describes what it accepts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from blippsync.connector import ConnectorContext
from blippsync.errors import ConfigError
from blippsync.hookspecs import hookimpl
from blippsync.records import Checkpoint, Note, Record, Rejected
from connectors.csv.columns import ColumnPlan, check_mapping
from connectors.csv.convert import RowConverter, derived_external_id
from connectors.csv.dates import DateParser
from connectors.csv.filefacts import inspect_file
from connectors.csv.formula import escape_formula
from connectors.csv.layout import FileLayout, read_layout
from connectors.csv.reader import DELIMITER_NAMES, Malformed, read_records

__all__ = ["CHECKPOINT_ROWS", "CsvConnector", "FileLayout", "derived_external_id",
           "escape_formula", "read_layout", "register_connectors"]

CHECKPOINT_ROWS = 5000


class CsvConnector:
    name = "csv"
    version = "1.0.0"
    events = ("job_completed",)
    needs_oauth = False

    def sync(self, ctx: ConnectorContext) -> Iterator[Record]:
        path = Path(ctx.options["path"])
        mapping = dict(ctx.settings.get("columns") or {})
        check_mapping(mapping)
        dates = _date_parser(ctx.settings)
        facts = inspect_file(path)
        layout = read_layout(path, facts, mapping)
        ctx.log.info("csv %s: %s, %s-separated, columns %s", path.name, facts.encoding,
                     DELIMITER_NAMES[layout.delimiter], layout.plan.describe())
        convert = RowConverter(layout.plan, path.name, dates,
                               DELIMITER_NAMES[layout.delimiter]).convert
        rows_done, line_done = 0, layout.header_line
        previous = ctx.cursor or {}
        if (not ctx.full and previous.get("file_sha256") == facts.sha256
                and not previous.get("complete") and previous.get("rows_done")):
            rows_done, line_done = int(previous["rows_done"]), int(previous["line"])
            ctx.log.info("csv %s: resuming after row %d (line %d)", path.name, rows_done,
                         line_done)
        else:  # the column report belongs to the run that read the file's top
            yield from column_report(layout.plan, path.name)
        cursor = {"file_sha256": facts.sha256, "file": path.name, "complete": False}
        end = line_done
        for line, cells, end in read_records(path, facts, layout.delimiter, line_done):
            if isinstance(cells, Malformed):
                yield Rejected(cells.reason, f"{path.name}:{line}")
            else:
                yield from convert(line, cells)
            rows_done += 1
            if rows_done % CHECKPOINT_ROWS == 0:
                yield Checkpoint({**cursor, "rows_done": rows_done, "line": end})
        yield Checkpoint({**cursor, "rows_done": rows_done, "line": end, "complete": True})


def column_report(plan: ColumnPlan, file_name: str) -> Iterator[Note]:
    """Which columns were read as what and which were ignored, and a warning when nothing
    in the file can reach a customer (no email or phone column)."""
    mapped = plan.describe()
    ignored = plan.ignored()
    shown = "; ".join(f"{f} <- {', '.join(repr(h) for h in hs)}" for f, hs in mapped.items())
    yield Note(f"columns read: {shown}" + (f"; ignored: {', '.join(repr(h) for h in ignored)}"
                                           if ignored else ""),
               file_name, data={"mapped": mapped, "ignored": ignored})
    if not plan.contactable:
        yield Note("WARNING: no email or phone column was recognised, so these customers "
                   "cannot be contacted; name the column in the csv.columns setting (for "
                   "example columns = { email = \"Courriel\" }) if the file has one",
                   file_name, data={"warning": "no_contact_columns"})


def _date_parser(settings: Any) -> DateParser:
    zone_name = settings.get("timezone") or "UTC"
    try:
        tz = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"csv: unknown time zone {zone_name!r}") from None
    order = settings.get("date_order") or "mdy"
    if order not in ("mdy", "dmy"):
        raise ConfigError(f"csv date_order: expected 'mdy' or 'dmy', got {order!r}")
    return DateParser(tz, order)


@hookimpl
def register_connectors(register: Callable[[Any], None]) -> None:
    register(CsvConnector())
