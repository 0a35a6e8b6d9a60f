"""Printing results: JSON for machines, rich tables for people."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import click


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, default=_default, indent=2))


def echo_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    for column in columns:
        table.add_column(column, overflow="fold")  # wrap, never elide: ids must stay copyable
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    # piped or captured output is not squeezed into 80 columns; sys.stdout is looked up at
    # call time so click's CliRunner capture is honoured
    stdout = sys.stdout
    width = None if stdout.isatty() else 1000
    Console(file=stdout, soft_wrap=True, width=width).print(table)
