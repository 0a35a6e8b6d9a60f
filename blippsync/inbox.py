"""The csv inbox: `<inbox>/<business_id>/*.csv` files imported on every pass.

Each file is imported through the csv connector, then moved to `processed/` or
`failed/` beside it with a JSON report of what happened (counts, rejected rows with
their line numbers). A file interrupted half-way stays in the inbox and resumes from
its committed checkpoint on the next pass.

The inbox never follows a symbolic link (whoever can write into it must not be able to
make the daemon import a file from elsewhere, or another business's file, or move files
out through a link): linked business folders and files are skipped with a warning, and a
`processed`/`failed` that is a link leaves the file where it is.

Only complete files are taken: dotfiles and `*.part`/`*.tmp` uploads in progress are
ignored, and a `.csv` is taken only once its size and modification time have not changed
for `csv.inbox_settle_seconds`. A file that still changed while it was imported stays in
the inbox and is imported again (idempotently) once it settles. The safe way to drop a
file is to write it under a temporary name and rename it into place (docs/csv.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from blippsync.config import Config

log = logging.getLogger(__name__)
PROCESSED_DIR = "processed"
FAILED_DIR = "failed"
IN_PROGRESS_SUFFIXES = (".part", ".tmp", ".partial", ".crdownload", ".filepart")


@dataclass(frozen=True)
class InboxFile:
    business_id: uuid.UUID
    path: Path
    stamp: tuple[int, int] = field(default=(0, 0), compare=False)  # size, mtime_ns when taken

    def changed(self) -> bool:
        """Whether the file was written to since it was taken (an upload still going on)."""
        try:
            return _stamp(self.path.stat()) != self.stamp
        except FileNotFoundError:
            return True


def _stamp(st: os.stat_result) -> tuple[int, int]:
    return st.st_size, st.st_mtime_ns


def is_upload_in_progress(path: Path) -> bool:
    """Names uploaders give a file while writing it: never imported."""
    name = path.name.lower()
    return name.startswith(".") or name.endswith(IN_PROGRESS_SUFFIXES)


def pending_files(config: Config, business_id: uuid.UUID | None = None) -> list[InboxFile]:
    """Complete files waiting in the inbox, oldest first, for one business or all."""
    root = config.resolve_path("csv.inbox_dir")
    settle_seconds = float(config["csv.inbox_settle_seconds"])
    if not root.is_dir():
        return []
    found: list[InboxFile] = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if folder.is_symlink():
            log.warning("inbox folder %s is a symbolic link; ignored", folder)
            continue
        try:
            owner = uuid.UUID(folder.name)
        except ValueError:
            log.warning("inbox folder %s is not named by a business id; ignored", folder)
            continue
        if business_id is not None and owner != business_id:
            continue
        settled = []
        for p in folder.iterdir():
            if p.suffix.lower() != ".csv" or not _regular(p) or is_upload_in_progress(p):
                continue
            st = p.lstat()
            if time.time() - st.st_mtime < settle_seconds:
                log.info("inbox file %s changed %.1fs ago; waiting for it to settle", p,
                         time.time() - st.st_mtime)
                continue
            settled.append((st.st_mtime, p.name, InboxFile(owner, p, _stamp(st))))
        found.extend(item for _, _, item in sorted(settled, key=lambda t: t[:2]))
    return found


def _regular(path: Path) -> bool:
    """A regular file itself, not a link to one (lstat: never follows)."""
    try:
        mode = path.lstat().st_mode
    except OSError:
        return False
    if stat.S_ISLNK(mode):
        log.warning("inbox file %s is a symbolic link; ignored", path)
    return stat.S_ISREG(mode)


def drop_complete_file(target: Path, text: str, settle_seconds: float) -> None:
    """Put a file this process wrote whole into the inbox: written under a `.part` name,
    renamed into place, and dated past the settle time, so the next pass takes it."""
    part = target.with_name(target.name + ".part")
    part.write_text(text, encoding="utf-8")
    settled = time.time() - settle_seconds - 1
    os.utime(part, (settled, settled))
    part.replace(target)


def file_done(item: InboxFile, report: dict[str, object], ok: bool) -> Path:
    """Move the file to processed/ or failed/ and write its report beside it. A target
    folder that is a link (or not a folder) is refused: the file stays where it is."""
    target_dir = item.path.parent / (PROCESSED_DIR if ok else FAILED_DIR)
    with contextlib.suppress(FileExistsError):
        target_dir.mkdir()
    mode = target_dir.lstat().st_mode
    if not stat.S_ISDIR(mode):
        log.error("inbox: %s is %s, not a folder; %s stays in the inbox", target_dir,
                  "a symbolic link" if stat.S_ISLNK(mode) else "a file", item.path.name)
        return item.path
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target = target_dir / f"{stamp}-{item.path.name}"
    item.path.replace(target)
    report_path = target.with_name(target.name + ".report.json")
    report_path.write_text(json.dumps({"file": item.path.name, "ok": ok, **report}, indent=2,
                                      default=str))
    return target
