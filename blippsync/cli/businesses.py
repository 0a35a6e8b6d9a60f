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


COMMANDS = [businesses]
