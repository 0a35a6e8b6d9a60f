"""Mistakes that could never fire are refused when a sequence is applied: triggers no
installed connector emits, unknown events for `customers add`, templates the sandbox
forbids; every problem of a file is reported at once and nothing is written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from journey_support import cli, make_business, rows

from blippsync.database import Database
from blippsync.errors import InputError
from blippsync.journeys.definitions import load_sequence_file
from blippsync.plugins import load_plugins


def _seq(name: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "trigger_source": "csv", "trigger_event_type": "job_completed",
            "steps": [{"type": "sms", "text": "Thanks {{ customer.first_name }}"}], **fields}


BROKEN = {"sequences": [
    _seq("Typo in source", trigger_source="qbo"),
    _seq("Typo in event", trigger_source="jobber", trigger_event_type="job_complete"),
    _seq("Bad steps", steps=[
        {"type": "sms", "text": "{{ ''.__class__ }}", "delay_minutes": -5},
        {"type": "email", "subject": "Hi", "body": "{{ customer.name | frobnicate }}"},
        {"type": "sms", "text": "{{ ''|attr('__cla' ~ 'ss__') }}"}]),
    _seq("Fine"),
]}


def test_every_problem_of_a_file_is_reported_at_once(tmp_path: Path) -> None:
    file = tmp_path / "broken.json"
    file.write_text(json.dumps(BROKEN))
    with pytest.raises(InputError) as raised:
        load_sequence_file(file, load_plugins().events_by_connector())
    header, *lines = str(raised.value).splitlines()
    assert header == f"{file}: 6 problems, nothing applied:"
    assert lines[0].startswith(f"{file}: sequence 'Typo in source': trigger_source 'qbo' is no "
                               "installed connector (installed: csv, jobber, manual, quickbooks")
    assert lines[1].startswith(f"{file}: sequence 'Typo in event': connector 'jobber' never "
                               "emits 'job_complete' (it emits: invoice_paid, job_completed)")
    assert lines[2].startswith(f"{file}: sequence 'Bad steps', step 1: delay_minutes must be")
    assert lines[3] == (f"{file}: sequence 'Bad steps', step 1: text: template reaches for "
                        "'__class__': attributes starting with _ are Python internals the "
                        "sandbox forbids")
    assert lines[4] == (f"{file}: sequence 'Bad steps', step 2: body: template failed: "
                        "No filter named 'frobnicate'.")
    assert lines[5].startswith(f"{file}: sequence 'Bad steps', step 3: text: template does "
                               "something the sandbox forbids")
    fine = tmp_path / "fine.json"
    fine.write_text(json.dumps({"sequences": [_seq("Fine"), _seq(
        "Invoices", trigger_source="quickbooks", trigger_event_type="invoice_paid")]}))
    assert len(load_sequence_file(fine, load_plugins().events_by_connector()).sequences) == 2


def test_apply_refuses_the_file_and_writes_nothing(tmp_path: Path, cli_env: dict[str, str],
                                                   db: Database) -> None:
    business = make_business(db)
    file = tmp_path / "broken.json"
    file.write_text(json.dumps(BROKEN))
    result = cli(cli_env, "sequences", "apply", str(file), "--business", str(business))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {file}: 6 problems, nothing applied:")
    assert "'qbo' is no installed connector" in result.stderr
    assert "'__class__'" in result.stderr
    assert rows(db, "SELECT count(*) FROM sequences") == [(0,)]

    unknown = cli(cli_env, "customers", "add", "--business", str(business), "--name", "Dana",
                   "--event", "job_finished")
    assert unknown.returncode == 2
    assert "'job_finished' is not an event" in unknown.stderr
    assert "job_completed, invoice_paid, customer_created" in unknown.stderr
    assert rows(db, "SELECT count(*) FROM customers") == [(0,)]
