"""`blippsync messages list`: what was sent, to whom, and what became of it."""

from __future__ import annotations

import click

from blippsync.cli import get_app
from blippsync.cli.output import echo_json, echo_table


@click.group("messages")
def messages() -> None:
    """Messages sent (or due) by the journeys."""


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


COMMANDS = [messages]
