"""`blippsync credentials set`: store a secret a plugin connector declares (an API key),
sealed in the token vault, for one business's connection."""

from __future__ import annotations

import sys
import uuid

import click

from blippsync.cli import get_app, get_plugins
from blippsync.connector import declared_credentials
from blippsync.errors import InputError


@click.group("credentials")
def credentials() -> None:
    """Secrets of connectors that use API keys instead of OAuth (stored encrypted)."""


@credentials.command("set")
@click.argument("connector")
@click.argument("name")
@click.option("--business", "business_id", required=True, type=click.UUID, help="Business id.")
@click.option("--account-id", default="", help="The remote account, when a business has several.")
@click.pass_context
def set_credential(ctx: click.Context, connector: str, name: str, business_id: uuid.UUID,
                   account_id: str) -> None:
    """Store the credential NAME of CONNECTOR, its value read from standard input."""
    from blippsync.businesses import get_business
    from blippsync.redaction import register_secret
    from blippsync.vault.credentials import store_credentials

    declared = declared_credentials(get_plugins(ctx).connector(connector))
    if name not in declared:
        raise InputError(f"connector {connector!r} declares no credential {name!r} "
                         f"(it declares: {', '.join(declared) or 'none'})")
    value = sys.stdin.readline().strip()
    if not value:
        raise InputError(f"{name}: nothing was read from standard input")
    register_secret(value)
    app = get_app(ctx)
    db = app.ready_db()
    with db.connect() as conn:
        get_business(conn, business_id)
    connection = store_credentials(db, app.config, business_id, connector, account_id,
                                   {name: value})
    click.echo(f"stored {connector} {name} for business {business_id} "
               f"(connection {connection.id})")


COMMANDS = [credentials]
