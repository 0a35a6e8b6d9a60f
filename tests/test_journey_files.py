"""Sequence files through the CLI: apply (TOML, YAML, JSON), validation errors at apply time,
list/show, and `explain` telling a customer's story."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from journey_support import add_event, apply, journey_config, make_business, make_customer, sequence

from blippsync.database import Database
from blippsync.journeys import execute_due_steps, route_events
from blippsync.journeys.definitions import load_sequence_file
from blippsync.plugins import load_plugins

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "demo-sequences.toml"


def blippsync(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "blippsync", *args], env=env, text=True,
                          capture_output=True, timeout=120)


def test_example_files_apply_and_are_idempotent(cli_env: dict[str, str], db: Database) -> None:
    first = blippsync(cli_env, "sequences", "apply", str(EXAMPLE), "--json")
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert result["business_created"] is True
    assert [s["created"] for s in result["sequences"]] == [True, True]
    again = json.loads(blippsync(cli_env, "sequences", "apply", str(EXAMPLE), "--json").stdout)
    assert again["business_id"] == result["business_id"] and not again["business_created"]
    assert [s["created"] for s in again["sequences"]] == [False, False]

    yaml_apply = blippsync(cli_env, "sequences", "apply", str(REPO / "examples" /
                                                              "demo-sequences.yaml"),
                           "--business", result["business_id"])
    assert yaml_apply.returncode == 0, yaml_apply.stderr
    listed = json.loads(blippsync(cli_env, "sequences", "list", "--json").stdout)
    assert sorted((s["name"], s["status"], s["steps"]) for s in listed) == [
        ("Quick thank-you after a job", "draft", 2),
        ("Review after a completed job", "active", 4),
        ("Thank you after an invoice is paid", "paused", 1)]
    shown = json.loads(blippsync(cli_env, "sequences", "show", "Review after a completed job",
                                 "--json").stdout)
    assert [s["step_type"] for s in shown["step_list"]] == ["email", "sms", "wait", "email"]
    text = blippsync(cli_env, "sequences", "show", "Review after a completed job").stdout
    assert "2. after 1440 min: sms (review)" in text


def test_flow_definition_follows_the_steps(db: Database) -> None:
    business = make_business(db)
    apply(db, business, sequence())
    apply(db, business, sequence(steps=[{"type": "wait", "delay_minutes": 5},
                                        {"type": "sms", "text": "hi"}]))
    with db.connect() as conn:
        import sqlalchemy as sa

        flow = conn.execute(sa.text("SELECT flow_definition FROM public.sequences")).scalar_one()
        steps = conn.execute(sa.text("SELECT step_type FROM public.sequence_steps "
                                     "ORDER BY step_order")).scalars().all()
    assert steps == ["wait", "sms"]
    assert [n["type"] for n in flow["nodes"]] == ["trigger", "wait", "sms"]
    assert len(flow["edges"]) == 2


@pytest.mark.parametrize(("step", "message"), [
    ({"type": "sms", "text": "Hi {{ customer.frist_name }}"},
     "step 1: text: unknown template variable 'customer.frist_name'"),
    ({"type": "email", "subject": "Hi", "body": "{{ coupon_code }}"},
     "step 1: body: unknown template variable 'coupon_code'"),
    ({"type": "email", "subject": "Hi {% if %}", "body": "x"},
     "step 1: subject: template syntax error on line 1"),
    ({"type": "fax", "text": "hi"}, "step 1: step type 'fax' is not one of"),
    ({"type": "sms", "channel": "whatsapp", "text": "hi"}, "step 1: channel 'whatsapp'"),
    ({"type": "email", "channel": "sms", "subject": "s", "body": "b"},
     "step 1: a email step cannot use channel 'sms'"),
    ({"type": "wait", "delay_minutes": -5}, "step 1: delay_minutes must be a whole number"),
    ({"type": "sms"}, "step 1: an sms step needs 'text'"),
    ({"type": "email", "subject": "s"}, "step 1: an email step needs 'body'"),
    ({"type": "sms", "text": "hi", "purpose": "spam"}, "step 1: purpose 'spam'"),
])
def test_template_and_step_errors_at_apply_time(step: dict, message: str, tmp_path: Path,
                                                cli_env: dict[str, str], db: Database) -> None:
    business = make_business(db)
    file = tmp_path / "bad.json"
    file.write_text(json.dumps({"sequences": [{"name": "Broken", "trigger_source": "csv",
                                               "trigger_event_type": "job_completed",
                                               "steps": [step]}]}))
    result = blippsync(cli_env, "sequences", "apply", str(file), "--business", str(business))
    assert result.returncode == 1
    line = result.stderr.strip()
    assert line.startswith(f"error: {file}: sequence 'Broken', {message}"), line
    assert "\n" not in line and "Traceback" not in result.stderr
    with db.connect() as conn:  # nothing written
        import sqlalchemy as sa

        assert conn.execute(sa.text("SELECT count(*) FROM public.sequences")).scalar() == 0


def test_bad_settings_and_files_are_one_line_errors(tmp_path: Path) -> None:
    file = tmp_path / "s.toml"
    file.write_text('[[sequences]]\nname = "X"\ntrigger_source = "csv"\n'
                    'trigger_event_type = "job_completed"\n[sequences.settings]\n'
                    'sms_hours = "21:00-08:00"\n[[sequences.steps]]\ntype = "wait"\n')
    from blippsync.errors import InputError

    with pytest.raises(InputError, match="sequence 'X': setting 'sms_hours'"):
        load_sequence_file(file)
    file.write_text("sequences = [")
    with pytest.raises(InputError, match="not valid TOML"):
        load_sequence_file(file)


def test_explain_tells_the_story(cli_env: dict[str, str], db: Database, database_url: str,
                                 tmp_path: Path) -> None:
    business = make_business(db)
    apply(db, business, sequence())
    happy = make_customer(db, business, name="Ada Lovelace")
    opted = make_customer(db, business, name="Bob Stop", opted_out=True)
    event = add_event(db, business, happy)
    add_event(db, business, opted)
    config = journey_config(tmp_path, database_url)
    from journey_support import noon_utc

    route_events(db, config, now=noon_utc())
    execute_due_steps(db, config, load_plugins(), now=noon_utc())

    story = blippsync(cli_env, "explain", "--customer", str(opted))
    assert story.returncode == 0, story.stderr
    assert "[opted out]" in story.stdout
    assert "skipped for sequence 'Thanks and review': customer_opted_out (the customer opted out)" \
        in story.stdout

    story = blippsync(cli_env, "explain", "--customer", str(happy)).stdout
    assert "ENROLLED in sequence 'Thanks and review'" in story
    assert "enrollment in 'Thanks and review': active, at step 2" in story
    assert "sms (thank_you) to +15555550123: sent" in story

    by_event = json.loads(blippsync(cli_env, "explain", "--event", str(event), "--json").stdout)
    assert by_event["decisions"][0]["reason"] == "enrolled"
    assert len(by_event["messages"]) == 1

    missing = blippsync(cli_env, "explain", "--customer", "not-a-uuid")
    assert missing.returncode == 1 and "not an id" in missing.stderr


def test_maintenance_command(cli_env: dict[str, str]) -> None:
    result = blippsync(cli_env, "maintenance", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"archived": 0, "stopped_archived_sequences": 0,
                                         "merged_customers": 0, "events_deleted": 0,
                                         "noop_runs_deleted": 0, "old_runs_deleted": 0}


def _steps_file(path: Path, steps: int, body: str = "Hi") -> Path:
    one = {"type": "email", "subject": "Thanks", "body": body}
    path.write_text(json.dumps({"sequences": [{
        "name": "Big", "trigger_source": "csv", "trigger_event_type": "job_completed",
        "steps": [one] * steps}]}))
    return path


@pytest.mark.parametrize("make, message", [
    (lambda p: _steps_file(p / "s.json", 500), "500 steps; at most 50"),
    (lambda p: _steps_file(p / "s.json", 1, "x" * 60_000), "body is 60000 characters"),
    (lambda p: _steps_file(p / "s.json", 1, "x" * 2_000_000), "larger than 1024 KiB"),
    (lambda p: (p / "s.toml").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR") and p / "s.toml",
     r"not UTF-8 text \(a binary file\?\): byte 0 is 0x89"),
    (lambda p: (p / "s.json").write_bytes(b'{"sequences": []}\x00\x00') and p / "s.json",
     "contains a NUL byte at offset 17"),
])
def test_sequence_files_have_size_limits_and_binary_files_a_clear_error(
        tmp_path: Path, make, message: str) -> None:
    from blippsync.errors import InputError

    path = make(tmp_path)
    with pytest.raises(InputError, match=message):
        load_sequence_file(path)


def test_a_binary_sequence_file_is_one_line_not_internal_error(tmp_path: Path,
                                                                cli_env: dict[str, str]) -> None:
    path = tmp_path / "photo.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    result = blippsync(cli_env, "sequences", "apply", str(path), "--business",
                       "00000000-0000-0000-0000-000000000001")
    assert result.returncode == 1
    assert "not UTF-8 text" in result.stderr and "Traceback" not in result.stderr
    assert "internal error" not in result.stderr
