"""The command line's contract: --version, --help everywhere, exit codes 0/1/2, one-line
failures without tracebacks, and the JSON of `businesses` and `status`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from blippsync import __version__
from blippsync.cli import cli

PASSWORD = "hunter2-Very-Secret"


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def _process(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    """The real `blippsync` process (python -m blippsync: same entry point as the script)."""
    return subprocess.run([sys.executable, "-m", "blippsync", *args], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("BLIPPSYNC_")}


def _all_commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None
        yield (*path, name)
        if isinstance(command, click.Group):
            yield from _all_commands(command, (*path, name))


def test_version_from_the_real_process(tmp_path: Path) -> None:
    done = _process(["--version"], _clean_env(), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"blippsync, version {__version__}"


def test_help_works_on_every_command_and_subcommand(workdir: Path) -> None:
    commands = list(_all_commands(cli))
    names = {" ".join(c) for c in commands}
    assert {"migrate", "status", "businesses", "businesses add", "businesses list",
            "db", "db stop"} <= names
    for path in [(), *commands]:
        result = _run(*path, "--help")
        assert result.exit_code == 0, (path, result.output)
        assert "Usage:" in result.output, path
        assert not (workdir / ".blippsync").exists(), f"--help of {path} touched the database"


@pytest.mark.parametrize("args", [["no-such-command"], ["businesses", "add", "--name", "X"],
                                  ["status", "--bogus-flag"], ["businesses"] + ["list", "extra"]])
def test_usage_errors_exit_2(workdir: Path, args: list[str]) -> None:
    result = _run(*args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_group_without_subcommand_shows_usage(workdir: Path) -> None:
    result = _run("businesses")
    assert result.exit_code in (0, 2)
    assert "Usage:" in result.output


def test_unreachable_database_is_one_line_exit_1_password_hidden(tmp_path: Path) -> None:
    env = _clean_env()
    env["BLIPPSYNC_DATABASE_URL"] = f"postgresql://blipp:{PASSWORD}@127.0.0.1:1/blipp"
    done = _process(["status"], env, tmp_path)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and "127.0.0.1" in lines[0]
    assert PASSWORD not in done.stderr + done.stdout
    assert "Traceback" not in done.stderr


def test_debug_flag_shows_the_traceback(tmp_path: Path) -> None:
    env = _clean_env()
    env["BLIPPSYNC_DATABASE_URL"] = f"postgresql://blipp:{PASSWORD}@127.0.0.1:1/blipp"
    done = _process(["--debug", "status"], env, tmp_path)
    assert done.returncode == 1
    assert "Traceback" in done.stderr


def test_bad_input_is_one_line_exit_1(workdir: Path, database_url: str) -> None:
    result = _run("businesses", "add", "--name", "Acme", "--owner-email", "owner@example.com",
                  "--timezone", "Mars/Olympus", env={"BLIPPSYNC_DATABASE_URL": database_url})
    assert result.exit_code == 1
    assert result.stderr.strip().count("\n") == 0 and "--timezone" in result.stderr


def test_businesses_add_then_list_round_trip(workdir: Path, database_url: str) -> None:
    env = {"BLIPPSYNC_DATABASE_URL": database_url}
    added = _run("businesses", "add", "--name", " Acme Plumbing ", "--owner-email",
                 "Owner@Example.com", "--timezone", "America/Chicago", "--google-review-url",
                 "https://g.page/r/acme/review", "--phone", "+13125550100", "--website-url",
                 "https://acme.example", "--json", env=env)
    assert added.exit_code == 0, added.output
    created = json.loads(added.stdout)
    assert set(created) >= {"id", "name"} and created["name"] == "Acme Plumbing"
    plain = _run("businesses", "add", "--name", "Second", "--owner-email", "b@example.com", env=env)
    assert plain.exit_code == 0, plain.output
    second_id = plain.stdout.strip()

    listed = _run("businesses", "list", "--json", env=env)
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [created["id"], second_id]
    acme = rows[0]
    assert acme["name"] == "Acme Plumbing"
    assert acme["created_by"] == "owner@example.com"
    assert acme["timezone"] == "America/Chicago"
    assert acme["google_review_url"] == "https://g.page/r/acme/review"
    assert acme["customers"] == 0
    assert rows[1]["timezone"] == "America/New_York"  # sync.default_timezone

    table = _run("businesses", "list", env=env)
    assert table.exit_code == 0 and "Acme Plumbing" in table.stdout
    assert created["id"] in table.stdout  # piped tables keep whole ids


def test_status_json_shape(workdir: Path, database_url: str) -> None:
    env = {"BLIPPSYNC_DATABASE_URL": database_url}
    assert _run("businesses", "add", "--name", "A", "--owner-email", "a@example.com",
                env=env).exit_code == 0
    result = _run("status", "--json", env=env)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) >= {"database", "migrations", "counts", "connections", "needs_attention"}
    assert set(report["database"]) >= {"url", "server_version"}
    assert report["migrations"]["pending"] == []
    assert all(isinstance(name, str) for name in report["migrations"]["applied"])
    assert report["migrations"]["applied"][0].startswith("0001_")
    assert report["counts"]["businesses"] == 1
    assert report["connections"] == [] and report["needs_attention"] == []

    text = _run("status", env=env)
    assert text.exit_code == 0 and "migrations:" in text.stdout


def test_status_on_an_unmigrated_database_lists_pending(workdir: Path,
                                                        empty_database_url: str) -> None:
    env = {"BLIPPSYNC_DATABASE_URL": empty_database_url}
    report = json.loads(_run("status", "--json", env=env).stdout)
    assert report["migrations"]["applied"] == [] and report["migrations"]["pending"]
    first = _run("migrate", env=env)
    assert first.exit_code == 0 and "applied 0001_" in first.stdout
    second = _run("migrate", env=env)
    assert second.exit_code == 0 and "up to date" in second.stdout


def test_db_stop_with_a_database_url_is_a_usage_error(workdir: Path, database_url: str) -> None:
    result = _run("db", "stop", env={"BLIPPSYNC_DATABASE_URL": database_url})
    assert result.exit_code == 2


def test_output_piped_into_a_closed_reader_is_not_an_error(tmp_path: Path) -> None:
    """`blippsync --help | head -1`: the reader leaves early; no 'internal error' line."""
    with subprocess.Popen([sys.executable, "-m", "blippsync", "businesses", "add", "--help"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path,
                          env=_clean_env()) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()  # the reader is gone before the first write
        stderr = proc.stderr.read().decode()
        proc.wait(timeout=60)
    assert "internal error" not in stderr and "Traceback" not in stderr, stderr
