"""The Jobber connector object the plugin host registers.

It polls clients, completed jobs and paid invoices (see `incremental`), verifies and
parses webhooks (see `webhooks`) and fetches what they announce (see `fetch`). Tokens come
from the vault through `ctx.tokens`; the connector never stores anything itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from blippsync.connector import ConnectorContext, OAuthClientSpec, WebhookNotice
from blippsync.errors import AuthError
from blippsync.records import Record
from connectors.jobber import auth, queries, webhooks
from connectors.jobber.fetch import fetch_notices
from connectors.jobber.graphql import GraphQLClient, retry_policy
from connectors.jobber.incremental import run_pass
from connectors.jobber.mapping import INVOICE_PAID, JOB_COMPLETED
from connectors.jobber.settings import JobberSettings

VERSION = "0.1.0"


class JobberConnector:
    name = "jobber"
    version = VERSION
    events = (JOB_COMPLETED, INVOICE_PAID)
    needs_oauth = True
    # apps created before 2022-04-11 still receive form-encoded webhooks
    webhook_content_types = frozenset({"application/json", "application/x-www-form-urlencoded"})

    # --- OAuth (the vault calls these) --------------------------------------------------
    def oauth_spec(self, settings: Mapping[str, Any]) -> OAuthClientSpec:
        return auth.oauth_spec(settings)

    def token_expiry(self, token_response: Mapping[str, Any], now: datetime) -> datetime:
        return auth.token_expiry(token_response, now)

    # --- polling ------------------------------------------------------------------------
    def sync(self, ctx: ConnectorContext) -> Iterator[Record]:
        settings = JobberSettings.from_mapping(ctx.settings)
        gql = self.client(ctx, settings)
        account = self.account_id(ctx, gql)
        now = ctx.now or datetime.now(UTC)
        cursor = None if ctx.full else ctx.cursor
        yield from run_pass(gql, settings, account, cursor, now)
        ctx.log.info("jobber: %d requests, %d THROTTLED absorbed, %.1f s paced",
                     gql.requests, gql.throttled, gql.throttle.slept_seconds)

    # --- webhooks -----------------------------------------------------------------------
    def verify_webhook(self, headers: Mapping[str, str], body: bytes,
                       settings: Mapping[str, Any]) -> bool:
        return webhooks.verify(headers, body, JobberSettings.from_mapping(settings).client_secret)

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookNotice]:
        return webhooks.parse(headers, body)

    def fetch(self, ctx: ConnectorContext, notices: Sequence[WebhookNotice]) -> Iterator[Record]:
        settings = JobberSettings.from_mapping(ctx.settings)
        gql = self.client(ctx, settings)
        yield from fetch_notices(gql, self.account_id(ctx, gql), notices)

    # --- helpers ------------------------------------------------------------------------
    def client(self, ctx: ConnectorContext, settings: JobberSettings | None = None
               ) -> GraphQLClient:
        if ctx.tokens is None:
            raise AuthError("Jobber: this connection has no tokens; run `blippsync connect "
                            "jobber` first")
        s = settings or JobberSettings.from_mapping(ctx.settings)
        return GraphQLClient(ctx.http, s.graphql_url, s.api_version, ctx.tokens, ctx.log,
                             timeout_seconds=s.request_timeout_seconds,
                             policy=retry_policy(s.backoff_seconds),
                             on_throttle_wait=ctx.on_throttle_wait)

    def account_id(self, ctx: ConnectorContext, gql: GraphQLClient) -> str:
        """The Jobber account id (EncodedId) that dedupe keys name. A token must belong to
        the connection's account: Jobber's API has no account in its URL, so a token copied
        from another account would quietly sync (and rotate) that account instead. The
        token's own `account_id` claim says which account it serves."""
        if ctx.account_id:
            if ctx.tokens is not None:
                token_account = auth.token_account(ctx.tokens.access_token())
                expected = auth.account_number(ctx.account_id)
                if None not in (token_account, expected) and token_account != expected:
                    raise AuthError(f"Jobber: the stored token belongs to account {token_account}"
                                    f", not to this connection's account {expected}; reconnect "
                                    "the connection")
            return ctx.account_id
        account = gql.execute(queries.ACCOUNT, shape="account").get("account") or {}
        if not account.get("id"):
            raise AuthError("Jobber: the account query returned no account id")
        return str(account["id"])


def account_info(gql: GraphQLClient) -> dict[str, str]:
    """{"id", "name"} of the connected account (call right after the code exchange)."""
    account = gql.execute(queries.ACCOUNT, shape="account").get("account") or {}
    return {"id": str(account.get("id") or ""), "name": str(account.get("name") or "")}


def app_disconnect(gql: GraphQLClient) -> None:
    """Ask Jobber to remove the app from the account (this also invalidates the tokens)."""
    result = gql.execute(queries.APP_DISCONNECT, shape="appDisconnect").get("appDisconnect") or {}
    errors = [e.get("message", "") for e in result.get("userErrors") or []]
    if errors:
        raise AuthError("Jobber appDisconnect failed: " + "; ".join(errors))
