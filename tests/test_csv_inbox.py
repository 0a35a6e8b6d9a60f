"""The csv inbox takes only complete files: uploads in progress (dotfiles, *.part, *.tmp)
are ignored, a file is taken once its size and modification time have settled, and a
file that still changes while it is imported stays in the inbox to be imported again."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from blippsync.app import App
from blippsync.businesses import add_business
from blippsync.config import Config
from blippsync.database import Database
from blippsync.plugins import load_plugins
from blippsync.runner import PassFilter, import_inbox

HEADER = "Customer ID,Name,Email\n"


def _rows(start: int, stop: int) -> str:
    return "".join(f"C{i},Person {i},p{i}@inbox.test\n" for i in range(start, stop))


def _age(path: Path, seconds: float) -> None:
    then = time.time() - seconds
    os.utime(path, (then, then))


def _pass(config: Config, **values: object) -> list[dict[str, object]]:
    app = App(config.with_values(**values))
    try:
        return [entry for entry, _ in import_inbox(app.db, app.config, load_plugins())]
    finally:
        app.close()


def _customers(db: Database) -> int:
    with db.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM customers")).scalar_one()


@pytest.fixture
def folder(db: Database, tmp_path: Path) -> Path:
    """A business's inbox folder."""
    business = add_business(db, name="Inbox", owner_email="o@inbox.test", timezone="UTC")
    path = tmp_path / "inbox" / str(business)
    path.mkdir(parents=True)
    return path


def test_a_half_written_upload_is_left_until_it_is_complete(config: Config, db: Database,
                                                            tmp_path: Path, folder: Path) -> None:
    upload = folder / "export.csv"
    upload.write_text(HEADER + _rows(0, 3000))  # 3,000 of 5,000 rows written so far
    settings = {"csv__inbox_dir": str(tmp_path / "inbox"), "csv__inbox_settle_seconds": 5}
    assert _pass(config, **settings) == []  # written just now: not taken
    assert _customers(db) == 0 and upload.exists()

    with upload.open("a") as f:  # the upload finishes, and nothing touches it for a while
        f.write(_rows(3000, 5000))
    _age(upload, 6)
    (report,) = _pass(config, **settings)
    assert report["created"] == 5000 and "moved_to" in report
    assert _customers(db) == 5000


def test_in_progress_names_are_never_taken(config: Config, db: Database, tmp_path: Path,
                                           folder: Path) -> None:
    for name in (".export.csv", "export.csv.part", "export.csv.tmp", "export.tmp",
                 "export.csv.crdownload"):
        (folder / name).write_text(HEADER + _rows(0, 5))
        _age(folder / name, 3600)
    report = _pass(config, csv__inbox_dir=str(tmp_path / "inbox"), csv__inbox_settle_seconds=5)
    assert report == [] and _customers(db) == 0
    assert len(list(folder.iterdir())) == 5  # all still there, untouched


def test_a_file_that_changes_while_imported_stays_in_the_inbox(config: Config, db: Database,
                                                               tmp_path: Path,
                                                               folder: Path) -> None:
    upload = folder / "export.csv"
    upload.write_text(HEADER + _rows(0, 400))
    _age(upload, 60)  # an uploader that paused longer than the settle time...
    app = App(config.with_values(csv__inbox_dir=str(tmp_path / "inbox"),
                                 csv__inbox_settle_seconds=5, sync__batch_size=100))
    def progress(label: str) -> object:
        def resumed(summary: object) -> None:  # ...goes on writing during the import
            if upload.stat().st_size < 30_000:
                with upload.open("a") as f:
                    f.write(_rows(400, 1000))
        return resumed

    try:
        ((entry, _),) = import_inbox(app.db, app.config, load_plugins(), PassFilter(),
                                     progress)  # type: ignore[arg-type]
    finally:
        app.close()
    assert entry["left_in_inbox"] == "the file changed while it was imported"
    assert "moved_to" not in entry and upload.exists()

    _age(upload, 60)
    (again,) = _pass(config, csv__inbox_dir=str(tmp_path / "inbox"),
                     csv__inbox_settle_seconds=5)
    assert "moved_to" in again
    assert _customers(db) == 1000  # every row, the late ones too
