"""The csv inbox: `<inbox>/<business_id>/*.csv` files imported on every pass.

Each file is imported through the csv connector, then moved to `processed/` or
`failed/` beside it with a JSON report of what happened (counts, rejected rows with
their line numbers). A file interrupted half-way stays in the inbox and resumes from
its committed checkpoint on the next pass.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from blippsync.config import Config

log = logging.getLogger(__name__)
PROCESSED_DIR = "processed"
FAILED_DIR = "failed"


@dataclass(frozen=True)
class InboxFile:
    business_id: uuid.UUID
    path: Path


def pending_files(config: Config, business_id: uuid.UUID | None = None) -> list[InboxFile]:
    """Files waiting in the inbox, oldest first, for one business or all."""
    root = config.resolve_path("csv.inbox_dir")
    if not root.is_dir():
        return []
    found: list[InboxFile] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            owner = uuid.UUID(folder.name)
        except ValueError:
            log.warning("inbox folder %s is not named by a business id; ignored", folder)
            continue
        if business_id is not None and owner != business_id:
            continue
        files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() == ".csv"]
        files.sort(key=lambda p: (p.stat().st_mtime, p.name))
        found.extend(InboxFile(owner, p) for p in files)
    return found


def file_done(item: InboxFile, report: dict[str, object], ok: bool) -> Path:
    """Move the file to processed/ or failed/ and write its report beside it."""
    target_dir = item.path.parent / (PROCESSED_DIR if ok else FAILED_DIR)
    target_dir.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = target_dir / f"{stamp}-{item.path.name}"
    item.path.replace(target)
    report_path = target.with_name(target.name + ".report.json")
    report_path.write_text(json.dumps({"file": item.path.name, "ok": ok, **report}, indent=2,
                                      default=str))
    return target
