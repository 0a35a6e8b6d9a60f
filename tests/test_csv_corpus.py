"""The export corpus: files written in each tool's documented format (tests/data/csv/corpus),
imported for real, against the customers a business owner expects from each
(expected.json, written by hand from the files)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from blippsync.businesses import add_business
from blippsync.config import Config
from blippsync.connections import ensure_connection
from blippsync.database import Database
from blippsync.plugins import load_plugins
from blippsync.sync import SyncOptions, SyncSummary, sync_connection

CORPUS = Path(__file__).parent / "data" / "csv" / "corpus"
EXPECTED = {k: v for k, v in json.loads((CORPUS / "expected.json").read_text()).items()
            if not k.startswith("_")}


def import_file(db: Database, config: Config, path: Path, country: str = "US"
                ) -> tuple[Any, SyncSummary]:
    business = add_business(db, name="Corpus Co", owner_email="owner@corpus.example",
                            timezone="UTC", country=country)
    with db.begin() as conn:
        connection = ensure_connection(conn, business, "csv")
    summary = sync_connection(db, config, connection, load_plugins().connector("csv"),
                              SyncOptions(options={"path": path}))
    assert summary.error is None, summary.error
    return business, summary


def customers(db: Database, business: Any) -> list[dict[str, Any]]:
    with db.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT external_id, name, email, other_emails, phone, mobile_phone AS mobile, "
            "phones, address, tags FROM customers WHERE business_id = :b ORDER BY name"),
            {"b": business}).mappings().all()
    return [{**r, "phones": [p["number"] for p in r["phones"]]} for r in rows]


@pytest.mark.parametrize("file_name", sorted(EXPECTED))
def test_each_export_gives_the_customers_its_owner_expects(db: Database, config: Config,
                                                           file_name: str) -> None:
    want = EXPECTED[file_name]
    business, summary = import_file(db, config, CORPUS / file_name, want["country"])
    got = customers(db, business)
    assert [c["name"] for c in got] == [c["name"] for c in want["customers"]]
    for have, expected in zip(got, want["customers"], strict=True):
        assert {k: have[k] for k in expected} == expected, have["name"]
    assert summary.counts.rejected == want["rejected"], summary.problems
    notes = [p["reason"] for p in summary.problems if p["kind"] == "note"]
    assert notes[0].startswith("columns read: ")  # the column report comes first
    for expected_note in want["notes"]:
        assert any(expected_note in n for n in notes), (expected_note, notes)
    reasons = [(p.get("field"), p["reason"]) for p in summary.problems if p["kind"] != "note"]
    for field, reason in want.get("problems", []):
        assert any(f == field and r.startswith(reason) for f, r in reasons), (reason, reasons)
    if "events" in want:
        with db.connect() as conn:
            occurred = conn.execute(sa.text("SELECT occurred_at FROM trigger_events WHERE "
                                            "business_id = :b"), {"b": business}).scalars()
            assert [[o.isoformat()] for o in occurred] == want["events"]


def test_the_column_report_names_what_was_read_and_what_was_ignored(
        db: Database, config: Config) -> None:
    _, summary = import_file(db, config, CORPUS / "square_customers.csv")
    (report,) = [p for p in summary.problems if p["reason"].startswith("columns read")]
    assert report["data"]["mapped"]["external_id"] == ["Square Customer ID", "Reference ID"]
    assert report["data"]["mapped"]["first_name"] == ["First Name"]
    assert "Total Spend" in report["data"]["ignored"] and "Memo" in report["data"]["ignored"]


def test_a_file_without_email_or_phone_columns_warns(db: Database, config: Config,
                                                     tmp_path: Path) -> None:
    path = tmp_path / "names.csv"
    path.write_text("Nom;Prénom;Courriel perso\nDupont;Zoé;zoe@example.fr\n")
    _, summary = import_file(db, config, path, "FR")
    assert any("no email or phone column" in p["reason"] for p in summary.problems)


def test_a_200000_character_notes_cell_and_a_long_mapped_cell(db: Database, config: Config,
                                                              tmp_path: Path) -> None:
    path = tmp_path / "notes.csv"
    path.write_text("Name,Email,Notes\n"
                    f"Ann Long,ann@example.com,\"{'x' * 200_000}\"\n"
                    f"\"{'y' * 5000}\",bob@example.com,\n")
    business, summary = import_file(db, config, path)
    assert [(c["name"], c["email"]) for c in customers(db, business)] == [
        ("Ann Long", "ann@example.com"), (None, "bob@example.com")]
    assert summary.counts.rejected == 0
    assert any("5,000-character cell is not a name" in p["reason"] for p in summary.problems)


def test_a_later_rows_blank_never_erases_what_an_earlier_row_or_the_store_gave(
        db: Database, config: Config, tmp_path: Path) -> None:
    first = tmp_path / "first.csv"
    first.write_text("Name,Email,Phone,Address\n"
                     "Ann Lee,ann@example.com,617-555-0101,\n"
                     "Ann Lee,ann@example.com,,1 Main St\n")  # same person, blank phone
    business, _ = import_file(db, config, first)
    (ann,) = customers(db, business)
    assert (ann["phone"], ann["address"]) == ("+16175550101", "1 Main St")
    later = tmp_path / "later.csv"
    later.write_text("Name,Email,Phone,Address\n,ann@example.com,,\n")
    with db.begin() as conn:
        connection = ensure_connection(conn, business, "csv")
    summary = sync_connection(db, config, connection, load_plugins().connector("csv"),
                              SyncOptions(options={"path": later}))
    assert summary.counts.updated == 0
    (ann,) = customers(db, business)
    assert (ann["name"], ann["phone"], ann["address"]) == ("Ann Lee", "+16175550101",
                                                           "1 Main St")


def test_the_corpus_imports_through_the_command_line_too(cli_env: dict[str, str],
                                                         tmp_path: Path, db: Database) -> None:
    import subprocess
    import sys

    business = add_business(db, name="Cli Co", owner_email="o@cli.example", timezone="UTC")
    path = tmp_path / "jobber.csv"
    shutil.copy(CORPUS / "jobber_clients.csv", path)
    out = subprocess.run([sys.executable, "-m", "blippsync", "import", "csv", str(path),
                          "--business", str(business)], env=cli_env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "3 customers were created" in out.stdout
    assert "columns read: external_id <- 'J-ID'" in out.stdout
