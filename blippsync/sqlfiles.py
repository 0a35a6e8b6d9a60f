"""Named SQL statements kept in .sql files, so the SQL that matters reads whole.

A file holds sections introduced by `-- name: <name>`; `load("file")["name"]` is a
SQLAlchemy text() clause (bind parameters are :name).
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

import sqlalchemy as sa

SQL_DIR = Path(__file__).resolve().parent / "sql"
_SECTION = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.M)


@cache
def load(stem: str) -> dict[str, sa.TextClause]:
    text = (SQL_DIR / f"{stem}.sql").read_text(encoding="utf-8")
    parts = _SECTION.split(text)
    sections = zip(parts[1::2], parts[2::2], strict=True)
    return {name: sa.text(body.strip()) for name, body in sections}
