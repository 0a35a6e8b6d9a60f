"""`blippsync demo`: the quickstart, carried all the way on the shipped examples."""

from __future__ import annotations

from typing import Any

import click

from blippsync.cli import get_app, get_plugins
from blippsync.cli.output import echo_json
from blippsync.cli.sync import print_report


@click.command("demo")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary.")
@click.pass_context
def demo_command(ctx: click.Context, as_json: bool) -> None:
    """The quickstart: a demo business, its journeys and an export, carried all the way."""
    from blippsync.demo import run_demo

    result = run_demo(get_app(ctx), get_plugins(ctx))
    if as_json:
        echo_json({"business_id": result.business_id, "inbox_file": str(result.inbox_file),
                   "outbox_dir": str(result.outbox_dir), "syncs": [
                       s.as_dict() for s in result.report.syncs],
                   "journeys": result.report.journeys, "failed": result.report.failed})
    else:
        _print_demo(result)
    if result.report.failed:
        ctx.exit(1)


def _print_demo(result: Any) -> None:
    report = result.report
    created = "created" if result.business_created else "found"
    click.echo(f"1. Business {result.business_id} ({created}) with journeys: "
               f"{', '.join(result.sequences)}")
    click.echo(f"2. Dropped the example export into the csv inbox: {result.inbox_file}")
    click.echo("3. Ran one pass, exactly what `blippsync run-once` does:")
    print_report(report, as_json=False)
    sent = sorted(result.outbox_dir.glob("*.eml")) + sorted(result.outbox_dir.glob("*.sms.txt"))
    click.echo("")
    click.echo(f"Messages rendered into the outbox: {len(sent)} in {result.outbox_dir}")
    if sent:
        click.echo(f"  open one:  cat {sent[0]}")
    click.echo("Where to look next:")
    if result.example_customer:
        customer_id, name = result.example_customer
        click.echo(f"  blippsync explain --customer {customer_id}")
        click.echo(f"      the story of {name}: events, decisions, enrollments, messages")
    click.echo("  blippsync status                   the database, connections, what needs you")
    click.echo("  blippsync run                      the service: syncs, journeys, webhooks")
    click.echo("Later steps of the journey (an SMS a day later, a follow-up) are scheduled; "
               "`blippsync run-once` sends them when they fall due.")


COMMANDS = [demo_command]
