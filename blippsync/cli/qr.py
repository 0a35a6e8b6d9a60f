"""`blippsync techs add|list|deactivate` and `blippsync qr create|list|deactivate`."""

from __future__ import annotations

from pathlib import Path

import click

from blippsync.cli import get_app
from blippsync.cli.output import echo_json, echo_table
from blippsync.techs import parse_id

_business = click.option("--business", "business_id", required=True,
                         help="Business id.")
_as_json = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group("techs")
def techs() -> None:
    """Technicians that QR codes and feedback are credited to."""


@techs.command("add")
@_business
@click.option("--name", required=True, help="The technician's name, as customers know them.")
@click.option("--email", help="Their email (optional).")
@_as_json
@click.pass_context
def techs_add(ctx: click.Context, business_id: str, name: str, email: str | None,
              as_json: bool) -> None:
    """Add a technician and print their id."""
    from blippsync.techs import add_tech

    tech_id = add_tech(get_app(ctx).ready_db(), parse_id(business_id, "business"), name, email)
    if as_json:
        echo_json({"id": tech_id, "name": name.strip()})
    else:
        click.echo(str(tech_id))


@techs.command("list")
@_business
@click.option("--all", "include_inactive", is_flag=True, help="Include deactivated technicians.")
@_as_json
@click.pass_context
def techs_list(ctx: click.Context, business_id: str, include_inactive: bool,
               as_json: bool) -> None:
    """List technicians with their QR scans and feedback."""
    from blippsync.techs import list_techs

    rows = list_techs(get_app(ctx).ready_db(), parse_id(business_id, "business"),
                      include_inactive=include_inactive)
    if as_json:
        echo_json(rows)
        return
    echo_table("Technicians", ["id", "name", "email", "active", "QR codes", "scans", "feedback",
                               "average rating"],
               [(r["id"], r["name"], r["email"], "yes" if r["active"] else "no", r["qr_codes"],
                 r["scans"], r["feedback"], r["average_rating"]) for r in rows])


@techs.command("deactivate")
@_business
@click.argument("tech_id")
@click.pass_context
def techs_deactivate(ctx: click.Context, business_id: str, tech_id: str) -> None:
    """Deactivate a technician (their codes keep working; their history stays)."""
    from blippsync.techs import deactivate_tech

    deactivate_tech(get_app(ctx).ready_db(), parse_id(business_id, "business"),
                    parse_id(tech_id, "tech"))
    click.echo(f"technician {tech_id} deactivated")


@click.group("qr")
def qr() -> None:
    """Printable QR codes leading to a business's feedback page."""


@qr.command("create")
@_business
@click.option("--tech", "tech_id", help="Credit scans and feedback to this technician.")
@click.option("--label", required=True, help="What the code is for (\"Truck 3\", \"Front desk\").")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), show_default=True, help="Folder for the PNG and SVG files.")
@_as_json
@click.pass_context
def qr_create(ctx: click.Context, business_id: str, tech_id: str | None, label: str,
              out_dir: Path, as_json: bool) -> None:
    """Create a code and write it as PNG and SVG, pointing at <http.public_base_url>/q/<code>."""
    from blippsync.qr_codes import create_code

    app = get_app(ctx)
    created = create_code(app.ready_db(), parse_id(business_id, "business"), label,
                          app.config["http.public_base_url"], out_dir,
                          parse_id(tech_id, "tech") if tech_id else None)
    if as_json:
        echo_json({"id": created.id, "code": created.code, "url": created.url,
                   "png": str(created.png), "svg": str(created.svg)})
    else:
        click.echo(f"{created.code}  {created.url}\n  {created.png}\n  {created.svg}")


@qr.command("list")
@_business
@_as_json
@click.pass_context
def qr_list(ctx: click.Context, business_id: str, as_json: bool) -> None:
    """List a business's codes with their scan counts."""
    from blippsync.qr_codes import list_codes

    rows = list_codes(get_app(ctx).ready_db(), parse_id(business_id, "business"))
    if as_json:
        echo_json(rows)
        return
    echo_table("QR codes", ["code", "label", "technician", "active", "scans", "last 30 days",
                            "last scan"],
               [(r["code"], r["label"], r["tech"], "yes" if r["active"] else "no",
                 r["scan_count"], r["scans_30_days"],
                 f"{r['last_scan_at']:%Y-%m-%d %H:%M}" if r["last_scan_at"] else "never")
                for r in rows])


@qr.command("deactivate")
@_business
@click.argument("code")
@click.pass_context
def qr_deactivate(ctx: click.Context, business_id: str, code: str) -> None:
    """Retire a code: scanning it then shows a friendly "no longer in use" page."""
    from blippsync.qr_codes import deactivate_code

    deactivate_code(get_app(ctx).ready_db(), parse_id(business_id, "business"), code)
    click.echo(f"QR code {code} deactivated")


COMMANDS = [techs, qr]
