"""`blippsync status`: the per-connection view and its exit code."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import sqlalchemy as sa
from click.testing import CliRunner, Result

from blippsync.businesses import add_business
from blippsync.cli import cli
from blippsync.connections import ensure_connection
from blippsync.database import Database


def _status(cli_env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, ["status", *args], env=cli_env)


def _connection(db: Database, name: str, **columns: Any) -> Any:
    business = add_business(db, name=name, owner_email=f"{name.lower()}@x.test", timezone="UTC")
    with db.begin() as conn:
        connection = ensure_connection(conn, business, "manual", "")
        for column, value in columns.items():  # column names are this test's own literals
            conn.execute(sa.text(f"UPDATE connections SET {column} = {value} WHERE id = :id"),
                         {"id": connection.id})
    return connection


def test_healthy_and_recently_failing_connections_need_no_human(db, cli_env) -> None:
    _connection(db, "Fine", last_success_at="now() - interval '5 minutes'",
                cursor_updated_at="now() - interval '5 minutes'",
                next_sync_at="now() + interval '10 minutes'")
    _connection(db, "Wobbly", consecutive_failures=2, last_error="'timed out'",
                last_success_at="now() - interval '3 hours'")
    result = _status(cli_env)
    assert result.exit_code == 0, result.output
    for column in ("last success", "cursor age", "last error", "next run", "due steps"):
        assert column in result.output
    assert "5m" in result.output and "timed out" in result.output
    assert "NEEDS ATTENTION" not in result.output


def test_expired_token_or_a_day_of_failures_exits_non_zero(db, cli_env) -> None:
    _connection(db, "Expired", status="'token_expired'", status_reason="'refresh refused'")
    result = _status(cli_env)
    assert result.exit_code == 1 and "NEEDS ATTENTION" in result.output
    with db.begin() as conn:
        conn.execute(sa.text("UPDATE connections SET status = 'connected'"))
    assert _status(cli_env).exit_code == 0
    _connection(db, "Broken", consecutive_failures=40, last_error="'HTTP 500'",
                last_success_at="now() - interval '26 hours'")
    result = _status(cli_env, "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert [c["business"] for c in report["needs_attention"]] == ["Broken"]
    assert {"due_steps", "next_sync_at", "cursor_age_seconds", "synced_by"} <= set(
        report["connections"][0])


def test_status_and_healthz_agree_on_who_needs_a_human(db, cli_env, config) -> None:
    """One rule (connections.NEEDS_HUMAN_SQL): a disconnected connection, an expired token
    and a day of failures are reported by both; a recent failure by neither."""
    from blippsync.http.health import health_report
    from blippsync.http.state import HttpState
    from blippsync.metrics import DaemonMetrics
    from blippsync.plugins import load_plugins

    expected = {
        _connection(db, "Gone", status="'disconnected'",
                    status_reason="'the app was disconnected in jobber'").id,
        _connection(db, "Expired", status="'token_expired'").id,
        _connection(db, "Broken", consecutive_failures=40,
                    last_success_at="now() - interval '26 hours'").id,
    }
    _connection(db, "Wobbly", consecutive_failures=2, last_success_at="now() - interval '3 hours'")
    result = _status(cli_env, "--json")
    assert result.exit_code == 1
    in_status = {c["id"] for c in json.loads(result.output)["needs_attention"]}
    state = HttpState(config=config, db=db, plugins=load_plugins(environ={}),
                      metrics=DaemonMetrics(), scheduler_age=lambda: 0.0)
    _healthy, report = asyncio.run(health_report(state))
    in_health = {p["id"] for p in report["connections_needing_attention"]}
    assert in_status == {str(i) for i in expected} == in_health
