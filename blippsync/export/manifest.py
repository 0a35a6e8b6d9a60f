"""manifest.json: what an export holds (tables, columns, row counts, SHA-256 of every
file, the schema it came from) so a restore can check it before touching anything."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from blippsync.errors import InputError

FORMAT_NAME = "blippsync-business-export"
FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
FILE_FORMATS = ("jsonl", "csv")


@dataclass
class TableEntry:
    name: str
    kind: str
    file: str
    columns: list[str]
    key: list[str]
    excluded_columns: list[str]
    rows: int = 0
    bytes: int = 0
    sha256: str = ""


@dataclass
class Manifest:
    business_id: str
    file_format: str
    exported_at: str
    schema_version: str
    migrations: list[str]
    tables: list[TableEntry] = field(default_factory=list)
    skipped_tables: list[dict[str, str]] = field(default_factory=list)
    format: str = FORMAT_NAME
    version: int = FORMAT_VERSION

    def write(self, folder: Path) -> None:
        text = json.dumps(asdict(self), indent=2) + "\n"
        (folder / MANIFEST_FILE).write_text(text, encoding="utf-8")

    @property
    def total_rows(self) -> int:
        return sum(t.rows for t in self.tables)


def read_manifest(folder: Path) -> Manifest:
    path = folder / MANIFEST_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no manifest: not a blippsync export folder") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read the manifest: {exc}") from None
    if data.get("format") != FORMAT_NAME:
        raise InputError(f"{path}: not a blippsync business export (format "
                         f"{data.get('format')!r})")
    if data.get("version") != FORMAT_VERSION:
        raise InputError(f"{path}: export format version {data.get('version')} is not "
                         f"supported (this blippsync reads version {FORMAT_VERSION})")
    try:
        tables = [TableEntry(**t) for t in data.pop("tables")]
        return Manifest(tables=tables, **data)
    except (TypeError, KeyError) as exc:
        raise InputError(f"{path}: the manifest is incomplete or damaged: {exc}") from None


def verify_files(folder: Path, manifest: Manifest, chunk_bytes: int = 1 << 20) -> None:
    """Every file's size and SHA-256 as the manifest says, or an error naming the file."""
    for entry in manifest.tables:
        path = folder / entry.file
        digest = hashlib.sha256()
        try:
            with open(path, "rb") as fh:
                while chunk := fh.read(chunk_bytes):
                    digest.update(chunk)
        except FileNotFoundError:
            raise InputError(f"{path}: missing (listed in {MANIFEST_FILE})") from None
        if digest.hexdigest() != entry.sha256:
            raise InputError(f"{path}: checksum does not match {MANIFEST_FILE} (the file was "
                             "changed or truncated): nothing restored")
