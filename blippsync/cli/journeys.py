"""`blippsync sequences apply|list|show`, `explain`, `maintenance` and `messages
unknown|release`: the journey engine seen from the command line."""

from __future__ import annotations

from dataclasses import asdict

import click

from blippsync.cli import get_app, get_plugins
from blippsync.cli.output import echo_json, echo_table


@click.group("sequences")
def sequences() -> None:
    """Journeys (sequences of steps): apply from a file, list, show."""


@sequences.command("apply")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--business", "business_id", help="Business id (default: the file's [business]).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def apply_(ctx: click.Context, file: str, business_id: str | None, as_json: bool) -> None:
    """Create or update sequences from a TOML, YAML or JSON file (validated first)."""
    from blippsync.journeys.apply import apply_sequence_file
    from blippsync.journeys.definitions import load_sequence_file

    # validation needs no database; triggers are checked against the connectors' events
    spec = load_sequence_file(file, get_plugins(ctx).events_by_connector())
    result = apply_sequence_file(get_app(ctx).ready_db(), spec, business_id=business_id)
    if as_json:
        echo_json({"business_id": result.business_id, "business_created": result.business_created,
                   "sequences": [asdict(s) for s in result.sequences]})
        return
    if result.business_created:
        click.echo(f"created business {result.business_id}")
    for s in result.sequences:
        click.echo(f"{'created' if s.created else 'updated'} sequence {s.name!r} ({s.status}, "
                   f"{s.steps} steps) for business {result.business_id}: {s.id}")


@sequences.command("list")
@click.option("--business", "business_id", help="Only this business's sequences.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_(ctx: click.Context, business_id: str | None, as_json: bool) -> None:
    """List sequences with their trigger, status and active enrollments."""
    from blippsync.journeys.catalog import list_sequences

    rows = list_sequences(get_app(ctx).ready_db(), business_id)
    if as_json:
        echo_json(rows)
        return
    echo_table("Sequences", ["id", "business", "name", "trigger", "status", "steps", "active"],
               [(r["id"], r["business"], r["name"], f"{r['trigger_source']}/"
                 f"{r['trigger_event_type']}", r["status"], r["steps"], r["active_enrollments"])
                for r in rows])


@sequences.command("show")
@click.argument("sequence")
@click.option("--business", "business_id", help="Business id, when names repeat.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(ctx: click.Context, sequence: str, business_id: str | None, as_json: bool) -> None:
    """Show one sequence (by name or id) with its steps."""
    from blippsync.journeys.catalog import show_sequence

    s = show_sequence(get_app(ctx).ready_db(), sequence, business_id)
    if as_json:
        echo_json(s)
        return
    click.echo(f"{s['name']} [{s['status']}] on {s['trigger_source']}/{s['trigger_event_type']} "
               f"for {s['business']} ({s['active_enrollments']} active enrollments)")
    if s["settings"]:
        click.echo(f"settings: {s['settings']}")
    for st in s["step_list"]:
        config = st["message_config"] or {}
        text = config.get("subject") or config.get("text") or ""
        click.echo(f"  {st['step_order'] + 1}. after {st['delay_minutes']} min: {st['step_type']}"
                   + (f" ({st['message_purpose']})" if st["message_purpose"] else "")
                   + (f": {text}" if text else ""))


@click.command("explain")
@click.option("--customer", "customer_id", help="Customer id: the whole story of a customer.")
@click.option("--event", "event_id", help="Trigger event id: what this event led to.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def explain(ctx: click.Context, customer_id: str | None, event_id: str | None,
            as_json: bool) -> None:
    """Why a customer did or did not get a message: events, decisions, enrollments, messages."""
    from blippsync.journeys.explain import explain_customer, explain_event, story_lines

    if bool(customer_id) == bool(event_id):
        raise click.UsageError("give exactly one of --customer ID or --event ID")
    db = get_app(ctx).ready_db()
    report = explain_customer(db, customer_id) if customer_id else explain_event(db, event_id or "")
    if as_json:
        echo_json(report)
        return
    for line in story_lines(report):
        click.echo(line)


@click.command("maintenance")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def maintenance(ctx: click.Context, as_json: bool) -> None:
    """Housekeeping: archive old finished enrollments, stop journeys of archived sequences,
    move merged customers' history to the survivor, delete old sync runs and routed trigger
    events (the daemon's daily retention does the same)."""
    from blippsync.journeys.retention import run_maintenance
    from blippsync.run_retention import delete_old_runs

    app = get_app(ctx)
    db = app.ready_db()
    runs = delete_old_runs(db, app.config)
    summary = run_maintenance(db, app.config)
    if as_json:
        echo_json({**asdict(summary), "noop_runs_deleted": runs.noop_deleted,
                   "old_runs_deleted": runs.old_deleted})
        return
    click.echo(f"archived {summary.archived} finished enrollments; stopped "
               f"{summary.stopped_archived_sequences} enrollments of archived sequences; moved "
               f"the history of {summary.merged_customers} merged customers; deleted "
               f"{summary.events_deleted} routed trigger events, {runs.noop_deleted} no-op "
               f"sync runs and {runs.old_deleted} old sync runs")


COMMANDS = [sequences, explain, maintenance]
