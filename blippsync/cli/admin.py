"""`blippsync migrate`, `status` and `db stop`: looking after the database."""

from __future__ import annotations

from typing import Any

import click

from blippsync.cli import get_app, get_plugins
from blippsync.cli.output import echo_json, echo_table
from blippsync.migrations import migrate as apply_migrations
from blippsync.status import age_text as _age
from blippsync.status import collect_status


@click.command("migrate")
@click.pass_context
def migrate(ctx: click.Context) -> None:
    """Apply pending database migrations (safe to run any number of times)."""
    applied = apply_migrations(get_app(ctx).db)
    if applied:
        for migration in applied:
            click.echo(f"applied {migration.path.name}")
    else:
        click.echo("database is up to date")


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Database, migrations and what needs attention; exit 1 when a human is needed."""
    app = get_app(ctx)
    report = collect_status(app.db, app.config)
    report["sequences_never_starting"] = _never_starting(ctx, app, report)
    if as_json:
        echo_json(report)
    else:
        db = report["database"]
        click.echo(f"database: {db['url']} (PostgreSQL {db['server_version']})")
        mig = report["migrations"]
        click.echo(f"migrations: {len(mig['applied'])} applied, {len(mig['pending'])} pending"
                   + (f" ({', '.join(mig['pending'])})" if mig["pending"] else ""))
        channels = report["channels"]
        click.echo("channels: " + ", ".join(f"{kind} via {name}" for kind, name
                                             in channels["active"].items()))
        for warning in channels["warnings"]:
            click.echo(f"WARNING: {warning}")
        for seq in report["sequences_never_starting"]:
            click.echo(f"WARNING: sequence {seq['name']!r} of {seq['business']} starts on "
                       f"{seq['trigger_source']}/{seq['trigger_event_type']}, which no installed "
                       "connector emits: it can never enroll anyone")
        for label, count in report["counts"].items():
            click.echo(f"{label}: {count}")
        if report["connections"]:
            echo_table("Connections", ["business", "connector", "account", "status",
                                       "last success", "cursor age", "last error", "next run",
                                       "due steps"],
                       [(c["business"], c["connector"], c["account_id"], c["status"]
                         + (f" ({c['status_reason']})" if c["status_reason"] else "")
                         + (" NEEDS ATTENTION" if c["needs_human"] else ""),
                         _when(c["last_success_at"]), _age(c["cursor_age_seconds"]),
                         c["last_error"],
                         f"syncing ({c['synced_by']})" if c["synced_by"]
                         else _when(c["next_sync_at"]),
                         c["due_steps"]) for c in report["connections"]])
        for d in report.get("daemons", []):
            click.echo(f"daemon {d['id']} on {d['hostname']} (pid {d['pid']}): last tick "
                       f"{_age(d['seconds_since_tick'])} ago")
    if report["needs_attention"]:
        ctx.exit(1)


def _never_starting(ctx: click.Context, app: Any, report: dict[str, Any]) -> list[dict[str, Any]]:
    if "businesses" not in report["counts"]:
        return []  # an unmigrated database: no sequences to look at
    from blippsync.journeys.catalog import never_starting

    return never_starting(app.db, get_plugins(ctx).events_by_connector())


def _when(at: Any) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S %Z") if at is not None else "never"


@click.group("db")
def db() -> None:
    """The embedded PostgreSQL server."""


@db.command("stop")
@click.pass_context
def stop(ctx: click.Context) -> None:
    """Stop the embedded server (it starts again on the next command)."""
    from blippsync.embedded import stop_embedded

    app = get_app(ctx)
    if app.config["database.url"]:
        raise click.UsageError("database.url is set: there is no embedded server to stop")
    stopped = stop_embedded(app.config.resolve_path("database.data_dir"))
    click.echo("stopped" if stopped else "not running")


COMMANDS = [migrate, status, db]
