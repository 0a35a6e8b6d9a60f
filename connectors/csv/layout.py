"""Finding the header: which delimiter, which line, which column is which field.

The header is the first record, among the first few, that names a name, email or phone
column: spreadsheet reports (QuickBooks' "Customer Contact List") put a title and a
blank line above it. Each sniffed delimiter is tried, most likely first.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from blippsync.errors import InputError
from connectors.csv.columns import ColumnPlan, plan_columns
from connectors.csv.filefacts import FileFacts
from connectors.csv.reader import Malformed, excel_sep_line, read_records, sniff_delimiters

HEADER_SEARCH_ROWS = 10
SHOWN_HEADERS = 8


@dataclass(frozen=True)
class FileLayout:
    delimiter: str
    header_line: int  # the last physical line of the header record
    plan: ColumnPlan


def read_layout(path: Path, facts: FileFacts, mapping: Mapping[str, str]) -> FileLayout:
    """The file's layout, or InputError saying why there is no usable header."""
    sep = excel_sep_line(path, facts)
    skip = 1 if sep else 0
    candidates = (sep,) if sep else sniff_delimiters(path, facts)
    first_row: list[str] | None = None
    first_missing: list[str] = []
    for delimiter in candidates:
        with closing(read_records(path, facts, delimiter, skip)) as records:
            for _, cells, end in islice(records, HEADER_SEARCH_ROWS):
                if isinstance(cells, Malformed) or not any(c.strip() for c in cells):
                    continue
                plan, missing = plan_columns(cells, mapping)
                if first_row is None:
                    first_row, first_missing = cells, missing
                if plan.usable and not missing:
                    return FileLayout(delimiter, end, plan)
    raise InputError(_why_unusable(path.name, first_row, first_missing))


def _why_unusable(name: str, first_row: list[str] | None, missing: list[str]) -> str:
    if first_row is None:
        return f"{name}: no header line (the file has no non-empty rows)"
    shown = ", ".join(repr(c.strip()) for c in first_row[:SHOWN_HEADERS])
    if len(first_row) > SHOWN_HEADERS:
        shown += f", ... ({len(first_row)} columns)"
    if missing:
        return (f"{name}: the column mapping names headers not in the file "
                f"({'; '.join(missing)}); its first line is: {shown}")
    looks_like_data = any("@" in c or sum(ch.isdigit() for ch in c) >= 7 for c in first_row)
    hint = " (that looks like data: the file needs a header line)" if looks_like_data else ""
    return (f"{name}: no usable header: no name, email or phone column in the first line "
            f"{shown}{hint}; name one of Name, Full Name, First Name + Last Name, Email, "
            "Phone, Mobile, or map columns in the csv.columns setting")
