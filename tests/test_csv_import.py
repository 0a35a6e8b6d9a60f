"""CSV imports end to end: the `import csv` command, the inbox, and the backfill guard."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from journey_support import apply, make_business, sequence

from blippsync.database import Database


def _cli(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "blippsync", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def _scalar(db: Database, sql: str, **params: object) -> object:
    with db.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


HOSTILE = (
    "\ufeffFull Name;E-mail;Mobile;Customer ID\r\n"
    "Zoë Brontë;ZOE@Example.com;(212) 555-0101;A1\r\n"
    ";;;A2\r\n"
    '"Smith; Jr., John";"john@smith.test";"";A3\r\n'
    '"Multi\r\nLine";ml@x.test;;A4\r\n'
    "=HYPERLINK(\"http://evil\");@evil.test;+1 212 555 0103;A5\r\n"
    "Bad Mail;not-an-email;;A6\r\n"
)


def test_import_reports_bad_rows_and_imports_every_good_one(db, cli_env, tmp_path) -> None:
    business = make_business(db)
    path = tmp_path / "export.csv"
    path.write_bytes(HOSTILE.encode("utf-8"))
    out = _cli(cli_env, "import", "csv", str(path), "--business", str(business), "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert (summary["created"], summary["rejected"]) == (5, 1)
    problems = {(p["location"], p["field"], p["reason"]) for p in summary["problems"]}
    assert any(loc == "export.csv:3" for loc, _f, _r in problems)  # the empty row A2
    assert ("export.csv:8", "email", "not a valid email address (no @)") in problems
    with db.connect() as conn:
        rows = conn.execute(sa.text("SELECT external_id, name, email, phone FROM customers "
                                    "ORDER BY external_id")).all()
    assert [tuple(r) for r in rows] == [
        ("A1", "Zoë Brontë", "zoe@example.com", "+12125550101"),
        ("A3", "Smith; Jr., John", "john@smith.test", None),
        ("A4", "Multi Line", "ml@x.test", None),
        ("A5", '=HYPERLINK("http://evil")', None, "+12125550103"),  # formula kept as text
        ("A6", "Bad Mail", None, None)]


def test_reimport_changes_nothing(db, cli_env, tmp_path) -> None:
    business = make_business(db)
    path = tmp_path / "jobs.csv"
    path.write_text("Name,Email,Completed At\n"
                    "Ann,ann@x.test,2026-11-20\n"
                    "Bob,bob@x.test,2026-11-21\n")
    first = json.loads(_cli(cli_env, "import", "csv", str(path), "--business", str(business),
                            "--json").stdout)
    second = json.loads(_cli(cli_env, "import", "csv", str(path), "--business", str(business),
                             "--json").stdout)
    assert first["created"] == 2 and first["events_emitted"] + first["events_historical"] == 2
    assert (second["created"], second["updated"], second["unchanged"]) == (0, 0, 2)
    assert second["events_emitted"] == second["events_historical"] == 0
    assert second["events_duplicate"] == 2
    assert _scalar(db, "SELECT count(*) FROM trigger_events") == 2


def test_file_without_header_fails_and_changes_nothing(db, cli_env, tmp_path) -> None:
    business = make_business(db)
    path = tmp_path / "numbers.csv"
    path.write_text("1,2,3\n4,5,6\n")
    out = _cli(cli_env, "import", "csv", str(path), "--business", str(business))
    assert out.returncode == 1
    assert "numbers.csv" in out.stderr and "Traceback" not in out.stderr
    assert _scalar(db, "SELECT count(*) FROM customers") == 0


def test_dry_run_writes_nothing(db, cli_env, tmp_path) -> None:
    business = make_business(db)
    path = tmp_path / "c.csv"
    path.write_text("Customer ID,Name,Email,Completed At\n"
                    "A1,Ann,ann@x.test,2026-11-20\nA2,Bea,ANN@x.test,\n")
    out = _cli(cli_env, "import", "csv", str(path), "--business", str(business), "--dry-run")
    assert out.returncode == 0 and "1 customers would be created" in out.stdout, out.stderr
    assert "1 record(s) joined a customer by a shared email" in out.stdout
    assert _scalar(db, "SELECT count(*) FROM customers") == 0
    assert _scalar(db, "SELECT count(*) FROM sync_runs") == 0
    assert _scalar(db, "SELECT count(*) FROM connections") == 0  # not even the connection
    assert _scalar(db, "SELECT count(*) FROM identity_conflicts") == 0


def test_inbox_files_are_imported_and_filed_with_reports(db, cli_env, tmp_path) -> None:
    business = make_business(db)
    inbox = tmp_path / "inbox"
    (inbox / str(business)).mkdir(parents=True)
    (inbox / str(business) / "good.csv").write_text("Name,Phone\nAnn,212-555-0111\n")
    (inbox / str(business) / "bad.csv").write_bytes(b"\x00\x01binary\x00")
    stranger = inbox / str(uuid.uuid4())
    stranger.mkdir()
    (stranger / "orphan.csv").write_text("Name\nNobody\n")
    env = {**cli_env, "BLIPPSYNC_CSV_INBOX_DIR": str(inbox),
           "BLIPPSYNC_CSV_INBOX_SETTLE_SECONDS": "0"}
    out = _cli(env, "run-once", "--json")
    assert out.returncode == 1  # the bad file and the unknown business fail; the good one lands
    report = json.loads(out.stdout)
    assert len(report["files"]) == 3
    folder = inbox / str(business)
    processed = sorted(p.name for p in (folder / "processed").iterdir())
    failed = sorted(p.name for p in (folder / "failed").iterdir())
    assert [n for n in processed if n.endswith(".csv")][0].endswith("-good.csv")
    assert [n for n in failed if n.endswith(".csv")][0].endswith("-bad.csv")
    good_report = json.loads(next((folder / "processed").glob("*.report.json")).read_text())
    assert good_report["ok"] is True and good_report["created"] == 1
    bad_report = json.loads(next((folder / "failed").glob("*.report.json")).read_text())
    assert bad_report["ok"] is False and "bad.csv" in bad_report["error"]
    assert (stranger / "failed").is_dir()
    assert not list(folder.glob("*.csv"))
    assert _scalar(db, "SELECT count(*) FROM customers") == 1


def test_backfill_guard_old_jobs_enroll_nobody_new_one_does(db, cli_env, tmp_path) -> None:
    business = make_business(db)
    apply(db, business, sequence())
    today = datetime.now(UTC).date()
    old = tmp_path / "history.csv"
    old.write_text("Name,Email,Phone,Completed At\n" + "".join(
        f"Old {i},old{i}@x.test,212-555-01{i:02d},{today - timedelta(days=60 + i)}\n"
        for i in range(5)))
    assert _cli(cli_env, "import", "csv", str(old), "--business", str(business)).returncode == 0
    out = _cli(cli_env, "run-once", "--json")
    assert out.returncode == 0, out.stderr
    assert _scalar(db, "SELECT count(*) FROM customer_enrollments") == 0
    assert _scalar(db, "SELECT count(*) FROM trigger_events WHERE historical") == 5
    new = tmp_path / "today.csv"
    new.write_text(f"Name,Email,Phone,Completed At\nNew,new@x.test,212-555-0199,{today}\n")
    assert _cli(cli_env, "import", "csv", str(new), "--business", str(business)).returncode == 0
    report = json.loads(_cli(cli_env, "run-once", "--json").stdout)
    assert report["journeys"]["routing"]["enrolled"] == 1
    assert _scalar(db, "SELECT count(*) FROM customer_enrollments") == 1


def test_the_inbox_never_follows_symbolic_links(tmp_path) -> None:
    """Links to a file outside the inbox, to another business's file, a business folder that
    is a link to another's, and a processed/ that leads elsewhere: none is followed."""
    from blippsync.config import load_config
    from blippsync.inbox import file_done, pending_files

    inbox, outside = tmp_path / "inbox", tmp_path / "outside"
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    for folder in (inbox / a, inbox / b, outside):
        folder.mkdir(parents=True)
    (outside / "secret.csv").write_text("Name\nSecret\n")
    (inbox / a / "real.csv").write_text("Name\nAnn\n")
    (inbox / b / "theirs.csv").write_text("Name\nBob\n")
    (inbox / a / "link.csv").symlink_to(outside / "secret.csv")
    (inbox / a / "stolen.csv").symlink_to(inbox / b / "theirs.csv")
    (inbox / c).symlink_to(inbox / b, target_is_directory=True)
    config = load_config(None, environ={"BLIPPSYNC_CSV_INBOX_DIR": str(inbox),
                                        "BLIPPSYNC_CSV_INBOX_SETTLE_SECONDS": "0"})
    found = sorted((str(f.business_id), f.path.name) for f in pending_files(config))
    assert found == sorted([(a, "real.csv"), (b, "theirs.csv")])

    (inbox / a / "processed").symlink_to(outside, target_is_directory=True)
    item = next(f for f in pending_files(config) if str(f.business_id) == a)
    assert file_done(item, {"created": 1}, ok=True) == item.path
    assert item.path.exists() and sorted(p.name for p in outside.iterdir()) == ["secret.csv"]
    (inbox / a / "failed").write_text("not a folder")
    assert file_done(item, {}, ok=False) == item.path
