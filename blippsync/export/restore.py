"""`blippsync restore`: an export back into an empty business, here or in another database.

Nothing is touched until the manifest, every file's checksum and the target's schema
check out; then the whole restore is one transaction (any error: nothing restored). Each
file is streamed with COPY into a temporary table and moved into place with one
INSERT ... SELECT, so memory stays flat and the server does the work.

Ids: restored under the export's own business id, every id is kept. Under another id,
every uuid of the export is replaced by a new one derived from it and the new business id
(md5(new business id || old id)): the same old id always becomes the same new id, so
every reference stays consistent (including ids embedded in text, see
tables.EMBEDDED_ID_COLUMNS), and restoring a copy beside the original cannot collide.
"""

from __future__ import annotations

import csv
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import sqlalchemy as sa
from psycopg import sql

from blippsync.database import Database, driver_connection
from blippsync.errors import InputError
from blippsync.export.dump import RAW_LINES, parse_business_id
from blippsync.export.manifest import Manifest, TableEntry, read_manifest, verify_files
from blippsync.export.tables import EMBEDDED_ID_COLUMNS, TenantTable, discover

CHUNK_BYTES = 1 << 20
Progress = Callable[[str, int], None]


@dataclass
class RestoreResult:
    business_id: str
    source_business_id: str
    business_created: bool
    ids_remapped: bool
    rows: dict[str, int] = field(default_factory=dict)


def restore_business(db: Database, folder: Path, business_id: str | None = None,
                     progress: Progress | None = None) -> RestoreResult:
    manifest = read_manifest(folder)
    source = uuid.UUID(manifest.business_id)
    target = parse_business_id(business_id) if business_id else source
    verify_files(folder, manifest)
    result = RestoreResult(str(target), str(source), False, target != source)
    try:
        with db.begin() as conn:
            conn.execute(sa.text("SET LOCAL TimeZone = 'UTC'"))
            tables, _skipped = discover(conn)
            by_name = {t.name: t for t in tables}
            _check_schema(manifest, by_name)
            exists = _check_empty(conn, target, tables)
            result.business_created = not exists
            cursor = driver_connection(conn).cursor()
            for number, entry in enumerate(manifest.tables):
                loader = _Loader(cursor, folder, entry, by_name[entry.name], manifest, number,
                                 source, target, exists, set(by_name))
                result.rows[entry.name] = loader.run()
                if progress:
                    progress(entry.name, result.rows[entry.name])
    except psycopg.Error as exc:
        raise _explain(exc) from None
    except sa.exc.DBAPIError as exc:
        raise _explain(exc.orig if isinstance(exc.orig, psycopg.Error) else exc) from None
    return result


def _check_schema(manifest: Manifest, tables: dict[str, TenantTable]) -> None:
    for entry in manifest.tables:
        table = tables.get(entry.name)
        if table is None:
            raise InputError(f"the export has table {entry.name!r}, which this database lacks "
                             "(is it migrated? `blippsync migrate`): nothing restored")
        missing = [c for c in entry.columns if c not in table.types]
        if missing:
            raise InputError(f"{entry.file}: columns {', '.join(missing)} do not exist in "
                             f"{entry.name} here (an older schema? `blippsync migrate`): "
                             "nothing restored")


def _check_empty(conn: sa.Connection, target: uuid.UUID, tables: list[TenantTable]) -> bool:
    """Whether the business exists; an error if it holds any row already."""
    exists = conn.execute(sa.text("SELECT 1 FROM public.businesses WHERE id = :id"),
                          {"id": target}).first() is not None
    if not exists:
        return False
    for table in tables:
        if table.kind != "owned":
            continue
        query = sql.SQL("SELECT 1 FROM public.{} WHERE business_id = %s LIMIT 1").format(
            sql.Identifier(table.name))
        if driver_connection(conn).execute(query, (target,)).fetchone():
            raise InputError(f"business {target} already has rows in {table.name}: restore "
                             "into an empty business, or under a new id (--business NEW_ID)")
    return True


class _Loader:
    """One table: file -> temporary table -> the real table, ids remapped when asked."""

    def __init__(self, cursor: Any, folder: Path, entry: TableEntry, table: TenantTable,
                 manifest: Manifest, number: int, source: uuid.UUID, target: uuid.UUID,
                 business_exists: bool, exported: set[str]):
        self.cursor, self.entry, self.table = cursor, entry, table
        self.path = folder / entry.file
        self.jsonl = manifest.file_format == "jsonl"
        self.stage = sql.Identifier(f"blippsync_restore_{number}")
        self.params = {"source": source, "target": target, "target_text": str(target)}
        self.remap = source != target
        self.business_exists = business_exists
        # uuid columns pointing outside the export keep their value
        outside = {fk.columns[0] for fk in table.foreign_keys
                   if len(fk.columns) == 1 and not (fk.ref_schema == "public"
                                                    and fk.ref_table in exported)}
        self.remapped = {c for c in table.uuid_columns if c not in outside}

    def run(self) -> int:
        self._stage()
        written = self._move()
        # free the temporary space now, not at the end of the whole restore
        self.cursor.execute(sql.SQL("DROP TABLE {}").format(self.stage))
        return written

    def _move(self) -> int:
        source = self._source()
        cols = sql.SQL(", ").join(sql.Identifier(c) for c in self.entry.columns)
        values = sql.SQL(", ").join(self._value(c) for c in self.entry.columns)
        name = sql.Identifier(self.entry.name)
        if self.table.kind == "reference":
            self.cursor.execute(sql.SQL("INSERT INTO public.{} ({}) SELECT {} FROM {} "
                                        "ON CONFLICT DO NOTHING").format(name, cols, values,
                                                                         source), self.params)
            return self.entry.rows
        if self.table.kind == "root" and self.business_exists:
            others = [c for c in self.entry.columns if c != "id"]
            self.cursor.execute(sql.SQL(
                "UPDATE public.businesses SET ({}) = (SELECT {} FROM {}) WHERE id = %(target)s"
            ).format(sql.SQL(", ").join(sql.Identifier(c) for c in others),
                     sql.SQL(", ").join(self._value(c) for c in others), source), self.params)
        else:
            self.cursor.execute(sql.SQL("INSERT INTO public.{} ({}) SELECT {} FROM {}").format(
                name, cols, values, source), self.params)
        written = int(self.cursor.rowcount)
        if written != self.entry.rows:
            raise InputError(f"{self.path}: {written} rows restored but the manifest says "
                             f"{self.entry.rows}: nothing restored")
        return written

    def _stage(self) -> None:
        if self.jsonl:
            self.cursor.execute(sql.SQL("CREATE TEMP TABLE {} (doc jsonb NOT NULL) "
                                        "ON COMMIT DROP").format(self.stage))
            statement = sql.SQL("COPY {} (doc) FROM STDIN WITH {}").format(self.stage, RAW_LINES)
        else:
            self._check_header()
            cols = sql.SQL(", ").join(sql.Identifier(c) for c in self.entry.columns)
            self.cursor.execute(sql.SQL("CREATE TEMP TABLE {} ON COMMIT DROP AS SELECT {} FROM "
                                        "public.{} WITH NO DATA").format(
                self.stage, cols, sql.Identifier(self.entry.name)))
            statement = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, HEADER true)").format(
                self.stage, cols)
        with open(self.path, "rb") as fh, self.cursor.copy(statement) as copy:
            while chunk := fh.read(CHUNK_BYTES):
                copy.write(chunk)

    def _check_header(self) -> None:
        with open(self.path, newline="", encoding="utf-8") as fh:
            header = next(csv.reader(fh), [])
        if header != self.entry.columns:
            raise InputError(f"{self.path}: line 1: the header is not the manifest's columns "
                             f"({', '.join(self.entry.columns)}): nothing restored")

    def _source(self) -> sql.Composable:
        if self.jsonl:
            return sql.SQL("{} AS s, jsonb_populate_record(NULL::public.{}, s.doc) AS r").format(
                self.stage, sql.Identifier(self.entry.name))
        return sql.SQL("{} AS r").format(self.stage)

    def _value(self, column: str) -> sql.Composable:
        ref = sql.Identifier("r", column)
        if not self.remap:
            return ref
        if column in self.remapped:
            return _remapped(ref)
        if (self.entry.name, column) in EMBEDDED_ID_COLUMNS:
            return sql.SQL("CASE WHEN {ref} ~ '^[0-9a-fA-F-]{{36}}:' THEN "
                           "({new})::text || substr({ref}, 37) ELSE {ref} END").format(
                ref=ref, new=_remapped(sql.SQL("left({}, 36)::uuid").format(ref)))
        return ref


def _remapped(ref: sql.Composable) -> sql.Composable:
    return sql.SQL("CASE WHEN {ref} IS NULL THEN NULL WHEN {ref} = %(source)s::uuid "
                   "THEN %(target)s::uuid ELSE md5(%(target_text)s || {ref}::text)::uuid END"
                   ).format(ref=ref)


def _explain(exc: BaseException) -> InputError:
    """A database refusal as one line: what, where (file line for COPY), nothing restored."""
    diag = getattr(exc, "diag", None)
    text = (getattr(diag, "message_primary", None) or str(exc)).strip().splitlines()[0]
    detail = getattr(diag, "message_detail", None)
    where = getattr(diag, "context", None) or ""
    line = ""
    if "line " in where and "blippsync_restore_" in where:
        line = " at line " + where.split("line ", 1)[1].split()[0].rstrip(",:")
    table = getattr(diag, "table_name", None)
    return InputError(f"restore refused{' in ' + table if table else ''}{line}: {text}"
                      + (f" ({detail})" if detail else "")
                      + ": nothing restored (the restore is one transaction)")
