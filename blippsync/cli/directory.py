"""`blippsync customers list|show|search` and `blippsync conflicts list|resolve`: seeing who
the customers are, which source records reach them, and the identity decisions to review.

The customer ids printed are the ones `blippsync explain --customer ID` takes.
"""

from __future__ import annotations

from typing import Any

import click

from blippsync.cli import get_app
from blippsync.cli.output import echo_json, echo_table
from blippsync.cli.sync import customers

_COLUMNS = ["id", "name", "email", "phone", "mobile", "source", "external id"]


def _table(title: str, rows: list[dict[str, Any]]) -> None:
    echo_table(title, _COLUMNS, [(r["id"], r["name"], r["email"], r["phone"], r["mobile_phone"],
                                  r["source"], r["external_id"]) for r in rows])
    if rows:
        click.echo(f"{len(rows)} customer(s); the story of one: blippsync explain "
                   f"--customer {rows[0]['id']}")


@customers.command("list")
@click.option("--business", "business_id", help="Only this business's customers.")
@click.option("--limit", default=100, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_(ctx: click.Context, business_id: str | None, limit: int, as_json: bool) -> None:
    """List customers (not merged away or deleted), oldest first."""
    from blippsync.directory import list_customers

    rows = list_customers(get_app(ctx).ready_db(), business_id, limit)
    echo_json(rows) if as_json else _table("Customers", rows)


@customers.command("search")
@click.argument("term")
@click.option("--business", "business_id", help="Only this business's customers.")
@click.option("--limit", default=100, show_default=True, help="At most this many.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def search(ctx: click.Context, term: str, business_id: str | None, limit: int,
           as_json: bool) -> None:
    """Find customers by name, email, phone number or external id (any source's)."""
    from blippsync.directory import search_customers

    rows = search_customers(get_app(ctx).ready_db(), business_id, term, limit)
    if as_json:
        echo_json(rows)
    elif not rows:
        click.echo(f"no customer matches {term!r}")
    else:
        _table(f"Customers matching {term!r}", rows)


@customers.command("show")
@click.argument("customer_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def show(ctx: click.Context, customer_id: str, as_json: bool) -> None:
    """One customer: every email and number, the source records that reach it, and its
    identity decisions."""
    from blippsync.directory import customer_detail

    c = customer_detail(get_app(ctx).ready_db(), customer_id)
    if as_json:
        echo_json(c)
        return
    flags = [f for f, on in (("opted out", c["opted_out"]), ("archived", c["archived"]),
                             ("deleted", c["deleted_at"]),
                             (f"merged into {c['merged_into_id']}", c["merged_into_id"])) if on]
    click.echo(f"{c['name'] or '(no name)'} [{c['id']}] of {c['business']}"
               + (f" ({', '.join(flags)})" if flags else ""))
    click.echo(f"  email: {c['email'] or '-'}"
               + (f" (also {', '.join(c['other_emails'])})" if c["other_emails"] else ""))
    click.echo(f"  phone: {c['phone'] or '-'}; SMS to: {c['mobile_phone'] or c['phone'] or '-'}")
    for p in c["phones"]:
        click.echo(f"    {p['kind']}: {p['number']}")
    click.echo(f"  address: {c['address'] or '-'}")
    click.echo(f"  from {c['source']} {c['external_id'] or ''}")
    for i in c["identities"]:
        what = {"site": "site", "shared_email": "shares its email",
                "alias": "same person"}[i["relation"]]
        click.echo(f"  also {i['source']} {i['external_id']} ({what}"
                   + (f": {i['label']}" if i["label"] else "") + ")")
    for d in c["identity_decisions"]:
        state = d["resolution"] or "open"
        click.echo(f"  {d['kind']} [{d['id']}] {d['source']} {d['external_id']} "
                   f"{d['field']}={d['value']}: {state}")
    click.echo(f"  story: blippsync explain --customer {c['id']}")


@click.group("conflicts")
def conflicts() -> None:
    """Identity decisions to review: records joined by a shared email, emails held back."""


@conflicts.command("list")
@click.option("--business", "business_id", help="Only this business's.")
@click.option("--all", "include_resolved", is_flag=True, help="Include resolved ones.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def conflicts_list(ctx: click.Context, business_id: str | None, include_resolved: bool,
                   as_json: bool) -> None:
    """List open identity decisions (with --all, resolved ones too)."""
    from blippsync.identity_review import list_conflicts

    rows = list_conflicts(get_app(ctx).ready_db(), business_id, include_resolved)
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no open identity conflicts")
        return
    echo_table("Identity decisions", ["id", "kind", "record", "value", "customer", "other",
                                      "state"],
               [(r["id"], r["kind"], f"{r['source']} {r['external_id']}", r["value"],
                 f"{r['customer_name'] or ''} {r['customer_id'] or ''}".strip(),
                 f"{r['other_name'] or ''} {r['conflicting_customer_id'] or ''}".strip()
                 if r["kind"] == "conflict" else "",
                 r["resolution"] or "open") for r in rows])
    click.echo("resolve one: blippsync conflicts resolve ID --keep-apart | --merge")


@conflicts.command("resolve")
@click.argument("conflict_id")
@click.option("--keep-apart", "action", flag_value="keep-apart",
              help="A joined record becomes its own customer; a conflict is closed as is.")
@click.option("--merge", "action", flag_value="merge",
              help="Merge the conflict's customer into the one that has the email; a join "
                   "is confirmed.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def conflicts_resolve(ctx: click.Context, conflict_id: str, action: str | None,
                      as_json: bool) -> None:
    """Resolve one identity decision: keep the records apart, or merge them."""
    from blippsync.identity_review import resolve_conflict

    if action is None:
        raise click.UsageError("give --keep-apart or --merge")
    result = resolve_conflict(get_app(ctx).ready_db(), conflict_id, action)
    echo_json(result) if as_json else click.echo(f"{result['kind']} {result['id']}: "
                                                 f"{result['outcome']}")


COMMANDS: list[click.Command] = [conflicts]  # list/show/search attach to `customers`
