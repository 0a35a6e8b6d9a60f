"""`blippsync messages`: what was sent, to whom, and what became of it; and the operator's
path for messages whose outcome is unknown (list them, release those never delivered)."""

from __future__ import annotations

import click

from blippsync.cli import get_app
from blippsync.cli.output import echo_json, echo_table


@click.group("messages")
def messages() -> None:
    """Messages sent (or due) by the journeys, and those whose outcome is unknown."""


@messages.command("list")
@click.option("--business", help="Only this business's messages (id).")
@click.option("--customer", help="Only this customer's messages (id).")
@click.option("--channel", type=click.Choice(["email", "sms"]), help="Only email or SMS.")
@click.option("--status", help="scheduled, sent, delivered, undelivered, failed, clicked or "
                               "unknown.")
@click.option("--since", help="Created since a date (2025-06-01, ISO 8601) or an age (30m, "
                              "12h, 7d, 2w).")
@click.option("--limit", type=int, default=100, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_(ctx: click.Context, business: str | None, customer: str | None, channel: str | None,
          status: str | None, since: str | None, limit: int, as_json: bool) -> None:
    """List messages, newest first, with their delivery status and errors."""
    from blippsync.journeys.messages import list_messages

    rows = list_messages(get_app(ctx).ready_db(), business=business, customer=customer,
                         channel=channel, status=status, since=since, limit=limit)
    if as_json:
        echo_json(rows)
        return
    echo_table("Messages", ["created", "business", "customer", "channel", "to", "status",
                            "sequence", "step", "detail"],
               [(f"{r['created_at']:%Y-%m-%d %H:%M}", r["business"], r["customer"] or "-",
                 r["channel"] + (f" ({r['via']})" if r["via"] else ""), r["sent_to"] or "-",
                 r["status"] + (" (file only)" if r["via"] == "outbox" else ""),
                 r["sequence"] or "-",
                 "-" if r["step_order"] is None else r["step_order"] + 1,
                 r["last_error"] or r["subject"] or "") for r in rows])


@messages.command("unknown")
@click.option("--business", "business_id", help="Only this business's messages.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def messages_unknown(ctx: click.Context, business_id: str | None, as_json: bool) -> None:
    """List messages that may or may not have reached the provider."""
    from blippsync.cli.sync import _uuid
    from blippsync.journeys.unknown import list_unknown

    rows = list_unknown(get_app(ctx).ready_db(), _uuid(business_id, "--business"))
    if as_json:
        echo_json(rows)
        return
    echo_table("Messages with an unknown outcome", ["id", "business", "customer", "channel",
                                                    "step", "to", "since", "error"],
               [(r["id"], r["business"], r["customer"], r["channel"], r["step"], r["sent_to"],
                 f"{r['created_at']:%Y-%m-%d %H:%M}", r["last_error"]) for r in rows])
    if rows:
        click.echo("Check the provider (SMTP log, Twilio console); release with `blippsync "
                   "messages release --not-delivered ID...` only those it never received.")


@messages.command("release")
@click.argument("ids", nargs=-1)
@click.option("--all", "release_all", is_flag=True,
              help="Every unknown message (of --business, if given).")
@click.option("--business", "business_id", help="Only this business's messages.")
@click.option("--not-delivered", "confirmed", is_flag=True, required=True,
              help="Required: you checked the provider and these messages never reached it.")
@click.option("--reason", default="confirmed not delivered by the operator",
              help="Why, kept on the message.")
@click.pass_context
def messages_release(ctx: click.Context, ids: tuple[str, ...], release_all: bool,
                     business_id: str | None, confirmed: bool, reason: str) -> None:
    """Send again unknown messages known never to have reached the provider."""
    from datetime import UTC, datetime

    from blippsync.cli.sync import _uuid
    from blippsync.journeys.unknown import list_unknown, release_unknown

    if bool(ids) == release_all:
        raise click.UsageError("give message ids, or --all")
    db = get_app(ctx).ready_db()
    business = _uuid(business_id, "--business")
    wanted = ([r["id"] for r in list_unknown(db, business)] if release_all
              else [_uuid(i, "ID") for i in ids])
    released = release_unknown(db, wanted, reason, datetime.now(UTC), business)
    click.echo(f"released {len(released)} of {len(wanted)} message(s); the next pass sends them")
    for missed in sorted(set(wanted) - set(released), key=str):
        click.echo(f"not released: {missed} (not unknown, another business, or its journey "
                   "has stopped)", err=True)
    if len(released) < len(wanted):
        ctx.exit(1)


COMMANDS = [messages]
