"""`blippsync businesses add|list`."""

from __future__ import annotations

import click

from blippsync.businesses import add_business, list_businesses
from blippsync.cli import get_app
from blippsync.cli.output import echo_json, echo_table


@click.group("businesses")
def businesses() -> None:
    """Create and list businesses (tenants)."""


@businesses.command("add")
@click.option("--name", required=True, help="Business name.")
@click.option("--owner-email", required=True, help="Owner's email (their login to the web app).")
@click.option("--timezone", help="IANA time zone for quiet hours (default: sync.default_timezone).")
@click.option("--google-review-url", help="Direct link to the Google review form.")
@click.option("--phone", help="Business phone number.")
@click.option("--website-url", help="Business website.")
@click.option("--country", default="US", show_default=True, help="Two-letter country for phones.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def add(ctx: click.Context, name: str, owner_email: str, timezone: str | None,
        google_review_url: str | None, phone: str | None, website_url: str | None,
        country: str, as_json: bool) -> None:
    """Create a business and print its id."""
    app = get_app(ctx)
    business_id = add_business(
        app.ready_db(), name=name, owner_email=owner_email,
        timezone=timezone or app.config["sync.default_timezone"],
        google_review_url=google_review_url, phone=phone, website_url=website_url, country=country)
    if as_json:
        echo_json({"id": business_id, "name": name.strip()})
    else:
        click.echo(str(business_id))


@businesses.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def list_(ctx: click.Context, as_json: bool) -> None:
    """List businesses with their customer counts."""
    rows = list_businesses(get_app(ctx).ready_db())
    if as_json:
        echo_json(rows)
        return
    echo_table("Businesses", ["id", "name", "owner", "timezone", "subscription", "customers"],
               [(r["id"], r["name"], r["created_by"], r["timezone"], r["subscription_status"],
                 r["customers"]) for r in rows])


@businesses.command("email")
@click.argument("business_id")
@click.option("--postal-address", help="Postal address printed in every email (CAN-SPAM); "
                                       "\"\" clears it.")
@click.option("--from-address", help="This business's own From address (a domain you send "
                                     "for); \"\" falls back to smtp.from_address.")
@click.option("--reply-to", help="Where replies go; \"\" falls back to smtp.reply_to.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def email(ctx: click.Context, business_id: str, postal_address: str | None,
          from_address: str | None, reply_to: str | None, as_json: bool) -> None:
    """Show or set a business's email identity: postal address, From, Reply-To."""
    from blippsync.ids import option_id
    from blippsync.sender_identity import set_sender_identity

    key = option_id(business_id, "BUSINESS_ID")
    if key is None:
        raise click.BadParameter("give the business's id", param_hint="BUSINESS_ID")
    identity = set_sender_identity(get_app(ctx).ready_db(), key, postal_address=postal_address,
                                   from_address=from_address, reply_to=reply_to)
    if as_json:
        echo_json(identity)
        return
    config = get_app(ctx).config
    click.echo(f"{identity['name']} ({identity['id']})")
    click.echo(f"  postal address: {identity['postal_address'] or 'NOT SET (required in email)'}")
    click.echo(f"  from: {identity['email_from_address'] or config['smtp.from_address'] or '-'}"
               + ("" if identity["email_from_address"] else " (smtp.from_address)"))
    click.echo(f"  reply-to: {identity['email_reply_to'] or config['smtp.reply_to'] or '-'}"
               + ("" if identity["email_reply_to"] else " (smtp.reply_to)"))


COMMANDS = [businesses]
