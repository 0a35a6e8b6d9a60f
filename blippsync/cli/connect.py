"""`blippsync connect <provider>` / `blippsync disconnect <provider>`.

`connect` and `disconnect` are groups: each OAuth connector adds its own subcommand
through the `register_commands` hook (see connectors/quickbooks/commands.py), reusing
`oauth_connect` and `oauth_disconnect` below, which do the provider-independent work.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import click
import httpx

from blippsync.cli import get_app
from blippsync.connector import OAuthCapableConnector
from blippsync.errors import ConfigError, InputError, NotFoundError
from blippsync.redaction import register_secret

HTTP_TIMEOUT_SECONDS = 30.0


@click.group("connect")
def connect() -> None:
    """Connect a business to a provider's account (stores its OAuth tokens, encrypted)."""


@click.group("disconnect")
def disconnect() -> None:
    """Revoke a provider's tokens and mark the connection disconnected."""


def oauth_flow_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every `connect <provider>` shares: handed-over token or consent page."""
    for option in reversed((
            click.option("--refresh-token-stdin", is_flag=True,
                         help="Read an existing refresh token from standard input instead of "
                              "opening the consent page."),
            click.option("--port", type=int, default=0, show_default=True,
                         help="Loopback port for the redirect (0: any free port)."),
            click.option("--timeout", type=float, default=300.0, show_default=True,
                         help="Seconds to wait for the browser to come back."))):
        command = option(command)
    return command


def oauth_connect(ctx: click.Context, connector: OAuthCapableConnector, business_id: uuid.UUID,
                  account_id: str | None, token_from_stdin: bool, port: int, timeout: float,
                  account_from_callback: Callable[[Mapping[str, str]], str | None]) -> None:
    """Store a handed-over refresh token (verified by a first refresh), or run the
    authorization-code flow with a loopback redirect."""
    from blippsync.businesses import get_business
    from blippsync.vault import connector_settings, store_tokens, token_provider
    from blippsync.vault.loopback import authorize
    from blippsync.vault.oauth import TokenEndpointError, code_grant

    app = get_app(ctx)
    db, config, name = app.ready_db(), app.config, connector.name
    with db.connect() as conn:
        get_business(conn, business_id)  # NotFoundError names the id
    settings = connector_settings(config, name, {})
    spec = connector.oauth_spec(settings)
    if not spec.client_id or not spec.client_secret:
        raise ConfigError(f"{name}.client_id and {name}.client_secret must be set (config file "
                          f"or BLIPPSYNC_{name.upper()}_CLIENT_ID / _CLIENT_SECRET)")
    with httpx.Client(timeout=HTTP_TIMEOUT_SECONDS) as http:
        if token_from_stdin:
            if not account_id:
                raise InputError("--refresh-token-stdin needs the account id option too")
            token = sys.stdin.readline().strip()
            if not token:
                raise InputError("--refresh-token-stdin: nothing was read from standard input")
            register_secret(token)
            connection = store_tokens(db, config, business_id, name, account_id, token)
            token_provider(db, config, connection, connector, http).access_token()  # proves it
        else:
            auth = authorize(spec, show=lambda url: click.echo(
                f"Open this URL in a browser and approve access:\n\n  {url}\n", err=True),
                port=port, timeout_seconds=timeout,
                redirect_uri=str(settings.get("redirect_uri") or ""))
            account_id = account_from_callback(auth.params) or account_id
            if not account_id:
                raise InputError("the provider's answer named no account; pass it explicitly")
            try:
                response = code_grant(http, spec, auth.code, auth.redirect_uri)
            except TokenEndpointError as exc:
                raise InputError(f"the code exchange failed: {exc}") from None
            if not response.refresh_token:
                raise InputError("the provider returned no refresh token")
            connection = store_tokens(
                db, config, business_id, name, account_id, response.refresh_token,
                response.access_token, connector.token_expiry(response.data, datetime.now(UTC)))
    click.echo(f"connected business {business_id} to {name} account {account_id} "
               f"(connection {connection.id})")


def oauth_disconnect(ctx: click.Context, connector: OAuthCapableConnector,
                     business_id: uuid.UUID) -> None:
    from blippsync.connections import find_connections
    from blippsync.vault import disconnect as vault_disconnect

    app = get_app(ctx)
    db = app.ready_db()
    with db.connect() as conn:
        connections = [c for c in find_connections(conn, business_id, connector.name)
                       if c.status != "disconnected"]
    if not connections:
        raise NotFoundError(f"business {business_id} has no active {connector.name} connection")
    with httpx.Client(timeout=HTTP_TIMEOUT_SECONDS) as http:
        for connection in connections:
            outcome = vault_disconnect(db, app.config, connection, connector, http)
            click.echo(f"disconnected {connector.name} account {connection.account_id}: {outcome}")


COMMANDS = [connect, disconnect]
