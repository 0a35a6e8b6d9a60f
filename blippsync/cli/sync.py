"""`run-once`, `import csv`, `customers add` and `connectors`: moving customers in."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, overload

import click

from blippsync.batch_writer import EVENT_TYPE
from blippsync.cli import get_app, get_plugins
from blippsync.cli.output import echo_json, echo_table
from blippsync.runner import PassFilter, PassReport, run_once
from blippsync.sync import SyncOptions, SyncSummary


@overload
def _uuid(value: str, option: str) -> uuid.UUID: ...
@overload
def _uuid(value: str | None, option: str) -> uuid.UUID | None: ...
def _uuid(value: str | None, option: str) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a business id (a UUID)",
                                 param_hint=option) from None


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    """A live progress line per connection on a terminal; nothing otherwise."""
    if not enabled or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"),
                  TextColumn("{task.fields[counts]}"), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=False) as bar:
        def factory(label: str) -> Any:
            task = bar.add_task(label, counts="", total=None)

            def update(summary: SyncSummary) -> None:
                c = summary.counts
                bar.update(task, counts=f"{summary.records:,} records · {c.created:,} new · "
                                        f"{c.updated:,} updated · {c.emitted:,} events")
            return update
        yield factory


@click.command("run-once")
@click.option("--business", "business", help="Only this business (id).")
@click.option("--connector", help="Only this connector (name).")
@click.option("--full", is_flag=True, help="Ignore cursors and reload history (old events "
              "are stored as historical and start no journey).")
@click.option("--dry-run", is_flag=True, help="Read and normalise everything, report what "
              "would change, write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.pass_context
def run_once_command(ctx: click.Context, business: str | None, connector: str | None,
                     full: bool, dry_run: bool, as_json: bool) -> None:
    """One pass over all due work (backfills, cron); exit 1 if any connection failed."""
    app, plugins = get_app(ctx), get_plugins(ctx)
    if connector and connector not in plugins.connectors:
        installed = ", ".join(sorted(plugins.connectors))
        raise click.BadParameter(f"no connector named {connector!r} (installed: {installed})",
                                 param_hint="--connector")
    if not dry_run:
        from blippsync.channels.readiness import announce_channels

        announce_channels(app.config)
    flt = PassFilter(_uuid(business, "--business"), connector, full, dry_run)
    with _progress(not as_json) as progress:
        report = run_once(app, plugins, flt, progress)
    print_report(report, as_json)
    if report.failed:
        ctx.exit(1)


def print_report(report: PassReport, as_json: bool) -> None:
    if as_json:
        echo_json({"syncs": [s.as_dict() for s in report.syncs], "files": report.files,
                   "journeys": report.journeys, "failed": report.failed})
        return
    if not report.syncs:
        click.echo("nothing to sync: no connections, and no files in the csv inbox")
    else:
        echo_table("Sync", ["business", "connector", "created", "updated", "unchanged",
                            "rejected", "joined", "conflicts", "events", "historical",
                            "result"],
                   [(str(s.business_id)[:8], s.connector, s.counts.created, s.counts.updated,
                     s.counts.unchanged, s.counts.rejected, s.counts.joined,
                     s.counts.conflicts, s.counts.emitted, s.counts.historical, _result(s))
                    for s in report.syncs])
        if any(s.counts.joined or s.counts.conflicts for s in report.syncs):
            click.echo("identity decisions to review: blippsync conflicts list")
    for entry in report.files:
        if "moved_to" in entry:
            click.echo(f"{entry['file']} -> {entry['moved_to']}")
    _print_journeys(report.journeys)


def _print_journeys(journeys: dict[str, Any]) -> None:
    if not journeys:
        return
    if "error" in journeys:
        click.echo(f"journeys FAILED: {journeys['error']}")
        return
    routing, execution = journeys["routing"], journeys["execution"]
    skipped = ", ".join(f"{reason} {count}" for reason, count in sorted(routing["skipped"].items()))
    click.echo(f"journeys: {routing['events']} events routed: {routing['enrolled']} enrolled"
               + (f"; skipped: {skipped}" if skipped else ""))
    stopped = ", ".join(f"{r} {c}" for r, c in sorted(execution["stopped"].items()))
    click.echo(f"steps: {execution['sent']} sent, {execution['failed']} failed, "
               f"{execution['deferred']} deferred (quiet hours or caps), {execution['retrying']} "
               f"retrying, {execution['unknown']} outcome unknown, {execution['completed']} "
               "journeys completed" + (f"; stopped: {stopped}" if stopped else ""))


_TROUBLE = ("rejected", "ignored_value")  # to stderr; notes and identity decisions to stdout


def _problem_line(problem: dict[str, Any]) -> str:
    kind = problem.get("kind")
    if kind in ("merged", "conflict"):
        what = "joined" if kind == "merged" else "conflict"
        return (f"{what}: record {problem['external_id']} ({problem['value']}): "
                f"{problem['reason']} [customer {problem['customer_id']}]")
    where = f"{problem['location']}: " if problem.get("location") else ""
    field = f"{problem['field']}: " if problem.get("field") else ""
    return f"{where}{field}{problem['reason']}"


def _result(summary: SyncSummary) -> str:
    if summary.skipped:
        return f"skipped: {summary.skipped}"
    if summary.error:
        return f"FAILED: {summary.error}"
    return "dry run" if summary.dry_run else "ok"


@click.group("import")
def import_group() -> None:
    """Import customers from files."""


@import_group.command("csv")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--business", required=True, help="Business id.")
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.pass_context
def import_csv(ctx: click.Context, file: Path, business: str, dry_run: bool, as_json: bool) -> None:
    """Import one CSV file of customers (and, with a date column, completed jobs)."""
    from blippsync.businesses import get_business
    from blippsync.connections import connection_for_run
    from blippsync.errors import InputError
    from blippsync.runner import sync_one

    if not file.is_file():
        raise InputError(f"{file}: no such file")
    app, plugins = get_app(ctx), get_plugins(ctx)
    business_id = _uuid(business, "--business")
    db = app.ready_db() if not dry_run else app.db
    with db.begin() as conn:
        get_business(conn, business_id)
        connection = connection_for_run(conn, business_id, "csv", dry_run=dry_run)
    with _progress(not as_json) as progress:
        summary = sync_one(db, app.config, plugins, connection,
                           SyncOptions(dry_run=dry_run, options={"path": file},
                                       progress=progress(file.name) if progress else None))
    _print_one(summary, as_json)
    if summary.error:
        ctx.exit(1)


def _print_one(summary: SyncSummary, as_json: bool) -> None:
    if as_json:
        echo_json(summary.as_dict())
        return
    if summary.locked_out:  # nothing ran: no counts to show, only why
        click.echo(f"error: {summary.error}", err=True)
        return
    c = summary.counts
    verb = "would be" if summary.dry_run else "were"
    click.echo(f"{c.created} customers {verb} created, {c.updated} updated, {c.unchanged} "
               f"unchanged, {c.rejected} rejected; {c.emitted} events {verb} emitted "
               f"({c.historical} historical, {c.duplicate} already known)")
    if c.joined or c.conflicts:
        click.echo(f"identity: {c.joined} record(s) joined a customer by a shared email, "
                   f"{c.conflicts} email conflict(s) held back (see `blippsync conflicts "
                   "list`)")
    for problem in summary.problems[:50]:
        click.echo(f"  {_problem_line(problem)}", err=problem.get("kind") in _TROUBLE)
    if len(summary.problems) > 50:
        click.echo(f"  ... and {len(summary.problems) - 50} more (see --json)", err=True)
    if summary.error:
        click.echo(f"error: {summary.error}", err=True)


@click.group("customers")
def customers() -> None:
    """Customers: add one by hand, list, search and show them."""


@customers.command("add")
@click.option("--business", required=True, help="Business id.")
@click.option("--name", required=True, help="Customer's name.")
@click.option("--email", help="Email address.")
@click.option("--phone", help="Phone number (normalised to E.164).")
@click.option("--external-id", help="Your own id for this customer (default: derived).")
@click.option("--event", "event", help="Also emit this trigger, e.g. job_completed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def customers_add(ctx: click.Context, business: str, name: str, email: str | None,
                  phone: str | None, external_id: str | None, event: str | None,
                  as_json: bool) -> None:
    """Add or update one customer; with --event, start the matching journeys."""
    from blippsync.businesses import get_business
    from blippsync.connections import ensure_connection
    from blippsync.runner import sync_one

    if event is not None and not EVENT_TYPE.match(event):
        raise click.BadParameter(f"{event!r}: event types are lower-case words joined by _ "
                                 "(job_completed, invoice_paid)", param_hint="--event")
    app, plugins = get_app(ctx), get_plugins(ctx)
    emits = plugins.events_by_connector().get("manual", ())
    if event is not None and event not in emits:
        raise click.BadParameter(f"{event!r} is not an event customers add can start journeys "
                                 f"with (known: {', '.join(emits)})", param_hint="--event")
    business_id = _uuid(business, "--business")
    db = app.ready_db()
    with db.begin() as conn:
        get_business(conn, business_id)
        connection = ensure_connection(conn, business_id, "manual")
    options: dict[str, Any] = {"customer": {"name": name, "email": email, "phone": phone,
                                            "external_id": external_id}, "event": event}
    summary = sync_one(db, app.config, plugins, connection, SyncOptions(options=options))
    _print_one(summary, as_json)
    if summary.error or summary.counts.rejected:
        ctx.exit(1)


@click.command("connectors")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def connectors_command(ctx: click.Context, as_json: bool) -> None:
    """List installed connectors: version, package, events, OAuth."""
    plugins = get_plugins(ctx)
    rows = [info.describe() for info in sorted(plugins.connectors.values(), key=lambda i: i.name)]
    if as_json:
        echo_json({"connectors": rows, "problems": plugins.problems})
    else:
        echo_table("Connectors", ["name", "version", "package", "events", "oauth", "webhooks"],
                   [(r["name"], r["version"], f"{r['package']} {r['package_version']}",
                     ", ".join(r["events"]), "yes" if r["needs_oauth"] else "no",
                     "yes" if r["webhooks"] else "no") for r in rows])
        for problem in plugins.problems:
            click.echo(f"problem: {problem}", err=True)
    if plugins.problems:
        ctx.exit(1)


COMMANDS = [run_once_command, import_group, customers, connectors_command]
