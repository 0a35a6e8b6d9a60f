"""`blippsync connect jobber` / `blippsync disconnect jobber`, added to the command line
through the `register_commands` hook like any plugin's commands.

Jobber's callback names no account, so the account id comes from the access token: its
JWT carries the numeric `account_id`, whose EncodedId is base64("gid://Jobber/Account/<n>").
The pair is stored before anything else can fail (Jobber rotates the refresh token on
every refresh), then the `account` query confirms the id and records the name.
Disconnecting calls the `appDisconnect` mutation (Jobber has no revocation endpoint),
which also invalidates the tokens, then forgets them here.
"""

from __future__ import annotations

import base64
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import click
import httpx
import sqlalchemy as sa

from blippsync.cli import get_app
from blippsync.cli.connect import HTTP_TIMEOUT_SECONDS, oauth_flow_options
from blippsync.errors import ConfigError, InputError, NotFoundError
from blippsync.redaction import register_secret
from connectors.jobber.auth import jwt_claims
from connectors.jobber.connector import JobberConnector, account_info, app_disconnect
from connectors.jobber.graphql import GraphQLClient
from connectors.jobber.settings import JobberSettings

_ACCOUNT_NAME = sa.text("UPDATE public.integrations_jobber SET account_name = :name "
                        "WHERE business_id = :business_id")


def account_id_from_token(access_token: str) -> str:
    number = jwt_claims(access_token).get("account_id")
    if not isinstance(number, int):
        raise InputError("Jobber's access token names no account; pass --account-id")
    return base64.b64encode(f"gid://Jobber/Account/{number}".encode()).decode()


@click.command("jobber")
@click.option("--business", "business_id", required=True, type=click.UUID, help="Business id.")
@click.option("--account-id", help="Jobber account id (EncodedId); read from the token if omitted.")
@oauth_flow_options
@click.pass_context
def connect_jobber(ctx: click.Context, business_id: uuid.UUID, account_id: str | None,
                   refresh_token_stdin: bool, port: int, timeout: float) -> None:
    """Connect a business to a Jobber account."""
    from blippsync.businesses import get_business
    from blippsync.vault import connector_settings, store_tokens
    from blippsync.vault.loopback import authorize
    from blippsync.vault.oauth import TokenEndpointError, code_grant, refresh_grant

    app = get_app(ctx)
    db, config, connector = app.ready_db(), app.config, JobberConnector()
    with db.connect() as conn:
        get_business(conn, business_id)
    settings = connector_settings(config, "jobber", {})
    spec = connector.oauth_spec(settings)
    if not spec.client_id or not spec.client_secret:
        raise ConfigError("jobber.client_id and jobber.client_secret must be set (config file "
                          "or BLIPPSYNC_JOBBER_CLIENT_ID / _CLIENT_SECRET)")
    with httpx.Client(timeout=HTTP_TIMEOUT_SECONDS) as http:
        try:
            if refresh_token_stdin:
                token = sys.stdin.readline().strip()
                if not token:
                    raise InputError("--refresh-token-stdin: nothing was read from standard input")
                register_secret(token)
                response = refresh_grant(http, spec, token)  # rotates: store the new pair next
            else:
                auth = authorize(spec, show=lambda url: click.echo(
                    f"Open this URL in a browser and approve access:\n\n  {url}\n", err=True),
                    port=port, timeout_seconds=timeout,
                    redirect_uri=str(settings.get("redirect_uri") or ""))
                response = code_grant(http, spec, auth.code, auth.redirect_uri)
        except TokenEndpointError as exc:
            raise InputError(f"Jobber refused the token request: {exc}") from None
        if not response.refresh_token:
            raise InputError("Jobber returned no refresh token")
        account = account_id or account_id_from_token(response.access_token)
        connection = store_tokens(db, config, business_id, "jobber", account,
                                  response.refresh_token, response.access_token,
                                  connector.token_expiry(response.data, datetime.now(UTC)))
        name = _confirm_account(connector, db, config, connection, http, account)
    click.echo(f"connected business {business_id} to Jobber account {account}"
               + (f" ({name})" if name else "") + f" (connection {connection.id})")


def _confirm_account(connector: Any, db: Any, config: Any, connection: Any,
                     http: httpx.Client, account: str) -> str:
    """Ask Jobber which account the stored tokens belong to; record its name."""
    import logging

    from blippsync.vault import connector_settings, token_provider

    s = JobberSettings.from_mapping(connector_settings(config, "jobber", connection.settings))
    gql = GraphQLClient(http, s.graphql_url, s.api_version,
                        token_provider(db, config, connection, connector, http),
                        logging.getLogger("blippsync.connector.jobber"))
    info = account_info(gql)
    if info["id"] and info["id"] != account:
        click.echo(f"warning: Jobber says this token belongs to account {info['id']}, not "
                   f"{account}; reconnect with --account-id {info['id']}", err=True)
    with db.begin() as conn:
        conn.execute(_ACCOUNT_NAME, {"name": info["name"] or None,
                                     "business_id": connection.business_id})
    return info["name"]


@click.command("jobber")
@click.option("--business", "business_id", required=True, type=click.UUID, help="Business id.")
@click.pass_context
def disconnect_jobber(ctx: click.Context, business_id: uuid.UUID) -> None:
    """Remove the app from the Jobber account (appDisconnect) and forget the tokens."""
    import logging

    from blippsync.connections import find_connections
    from blippsync.errors import AuthError, BlippsyncError
    from blippsync.vault import connector_settings, refresher_for, token_provider

    app = get_app(ctx)
    db, config, connector = app.ready_db(), app.config, JobberConnector()
    with db.connect() as conn:
        connections = [c for c in find_connections(conn, business_id, "jobber")
                       if c.status != "disconnected"]
    if not connections:
        raise NotFoundError(f"business {business_id} has no active jobber connection")
    with httpx.Client(timeout=HTTP_TIMEOUT_SECONDS) as http:
        for connection in connections:
            s = JobberSettings.from_mapping(connector_settings(config, "jobber",
                                                               connection.settings))
            try:
                gql = GraphQLClient(http, s.graphql_url, s.api_version,
                                    token_provider(db, config, connection, connector, http),
                                    logging.getLogger("blippsync.connector.jobber"))
                app_disconnect(gql)
                outcome = "app removed from the Jobber account"
            except AuthError as exc:
                outcome = f"Jobber already refuses our tokens ({exc}); forgotten here anyway"
            except BlippsyncError as exc:
                outcome = f"appDisconnect failed ({exc}); tokens forgotten here anyway"
            refresher = refresher_for(db, config, connection, connector, http)
            with db.begin() as conn:
                refresher.store.lock(conn, connection)
                refresher.store.mark(conn, connection, "disconnected",
                                     "disconnected by the operator")
            click.echo(f"disconnected jobber account {connection.account_id}: {outcome}")
