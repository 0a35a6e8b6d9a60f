"""`blippsync export`: every row a business owns, one file per table, streamed.

Each table is read with `COPY (SELECT ...) TO STDOUT` inside one REPEATABLE READ, read-only
transaction (one consistent snapshot for the whole export), and written to its file as the
server sends it: memory stays flat whatever the size. JSON lines come from the server's
own `row_to_json`, CSV from its CSV writer, both with times in UTC, so two exports of the
same data are byte-identical.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from psycopg import sql

from blippsync.database import Database, driver_connection
from blippsync.errors import InputError, NotFoundError
from blippsync.export.manifest import FILE_FORMATS, Manifest, TableEntry
from blippsync.export.scope import select_rows
from blippsync.export.tables import discover

FLUSH_BYTES = 1 << 20
# CSV with a delimiter and quote that never occur in row_to_json's output (it escapes every
# control character): each line is the JSON text exactly as the server made it.
RAW_LINES = sql.SQL("(FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')")
_MIGRATIONS = sa.text("SELECT version, name FROM blippsync.schema_migrations ORDER BY version")
Progress = Callable[[str, int], None]


def parse_business_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise InputError(f"--business: {value!r} is not a business id (a UUID)") from None


def _prepare(folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError(f"{folder}: exists and is not an empty folder (an export never "
                         "overwrites files)")
    folder.mkdir(parents=True, exist_ok=True)


def export_business(db: Database, business_id: str, folder: Path, file_format: str = "jsonl",
                    progress: Progress | None = None) -> Manifest:
    if file_format not in FILE_FORMATS:
        raise InputError(f"--format must be one of {', '.join(FILE_FORMATS)}")
    key = parse_business_id(business_id)
    with db.connect() as plain:
        conn = plain.execution_options(isolation_level="REPEATABLE READ",
                                       postgresql_readonly=True)
        with conn.begin():
            conn.execute(sa.text("SET LOCAL TimeZone = 'UTC'"))
            conn.execute(sa.text("SET LOCAL DateStyle = 'ISO, YMD'"))
            if conn.execute(sa.text("SELECT 1 FROM public.businesses WHERE id = :id"),
                            {"id": key}).first() is None:
                raise NotFoundError(f"no business with id {key}")
            migrations = [f"{r.version:04d}_{r.name}" for r in conn.execute(_MIGRATIONS)]
            tables, skipped = discover(conn)
            _prepare(folder)
            manifest = Manifest(business_id=str(key), file_format=file_format,
                                exported_at=datetime.now(UTC).isoformat(timespec="seconds"),
                                schema_version=migrations[-1] if migrations else "",
                                migrations=migrations,
                                skipped_tables=[{"name": s.name, "why": s.why} for s in skipped])
            by_name = {t.name: t for t in tables}
            cursor = driver_connection(conn).cursor()
            for table in tables:
                entry = TableEntry(name=table.name, kind=table.kind,
                                   file=f"{table.name}.{file_format}", columns=table.columns,
                                   key=table.key, excluded_columns=table.excluded)
                rows = select_rows(table, by_name)
                if file_format == "jsonl":
                    statement = sql.SQL("COPY (SELECT row_to_json(r) FROM ({}) AS r) TO STDOUT "
                                        "WITH {}").format(rows, RAW_LINES)
                else:
                    statement = sql.SQL("COPY ({}) TO STDOUT WITH (FORMAT csv, HEADER true)"
                                        ).format(rows)
                _copy_to_file(cursor, statement, {"business": key}, folder / entry.file, entry)
                manifest.tables.append(entry)
                if progress:
                    progress(table.name, entry.rows)
    manifest.write(folder)
    return manifest


def _copy_to_file(cursor: object, statement: sql.Composable, params: dict[str, object],
                  path: Path, entry: TableEntry) -> None:
    digest = hashlib.sha256()
    size = 0
    buffer = bytearray()
    with open(path, "wb") as fh, cursor.copy(statement, params) as copy:  # type: ignore[attr-defined]
        for chunk in copy:
            buffer += chunk
            if len(buffer) >= FLUSH_BYTES:
                digest.update(buffer)
                fh.write(buffer)
                size += len(buffer)
                buffer.clear()
        digest.update(buffer)
        fh.write(buffer)
        size += len(buffer)
    entry.rows = int(cursor.rowcount)  # type: ignore[attr-defined]
    entry.bytes = size
    entry.sha256 = digest.hexdigest()
