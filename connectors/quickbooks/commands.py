"""`blippsync connect quickbooks` / `blippsync disconnect quickbooks`, added to the command
line through the `register_commands` hook like any plugin's commands."""

from __future__ import annotations

import uuid

import click

from blippsync.cli.connect import oauth_connect, oauth_disconnect, oauth_flow_options
from connectors.quickbooks.connector import QuickBooksConnector


@click.command("quickbooks")
@click.option("--business", "business_id", required=True, type=click.UUID, help="Business id.")
@click.option("--realm-id", help="QuickBooks company id (with --refresh-token-stdin).")
@oauth_flow_options
@click.pass_context
def connect_quickbooks(ctx: click.Context, business_id: uuid.UUID, realm_id: str | None,
                       refresh_token_stdin: bool, port: int, timeout: float) -> None:
    """Connect a business to a QuickBooks Online company."""
    oauth_connect(ctx, QuickBooksConnector(), business_id, realm_id, refresh_token_stdin, port,
                  timeout, lambda params: params.get("realmId"))


@click.command("quickbooks")
@click.option("--business", "business_id", required=True, type=click.UUID, help="Business id.")
@click.pass_context
def disconnect_quickbooks(ctx: click.Context, business_id: uuid.UUID) -> None:
    """Revoke the QuickBooks tokens at Intuit and mark the connection disconnected."""
    oauth_disconnect(ctx, QuickBooksConnector(), business_id)
