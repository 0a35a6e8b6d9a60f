"""Talking to a provider's OAuth 2 endpoints, built on authlib's primitives.

authlib builds the requests (grant bodies, client authentication, authorization URLs);
we send them with the caller's httpx client, so tests, timeouts and connection pooling
are the caller's, and classify every failure precisely: whether the request may have
been processed matters, because a refresh the provider processed but whose answer we
lost has already rotated the refresh token.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri, prepare_token_request

from blippsync.connector import OAuthClientSpec
from blippsync.redaction import register_secret

# kinds of failure, from "retry freely" to "needs a human"
UNSENT = "unsent"  # never reached the provider: safe to retry
LOST = "lost"  # sent, answer lost (timeout, dropped connection): may have been processed
TRANSIENT = "transient"  # 5xx / 429: not processed, retry with backoff
INVALID_GRANT = "invalid_grant"  # the refresh token is dead
INVALID_CLIENT = "invalid_client"  # our client id/secret are wrong (configuration)
REJECTED = "rejected"  # any other refusal


class TokenEndpointError(Exception):
    def __init__(self, kind: str, message: str, intuit_tid: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.intuit_tid = intuit_tid


@dataclass(frozen=True)
class TokenResponse:
    data: Mapping[str, Any] = field(repr=False)
    transaction_id: str | None = None  # intuit_tid when the provider sends one

    @property
    def access_token(self) -> str:
        return str(self.data["access_token"])

    @property
    def refresh_token(self) -> str | None:
        value = self.data.get("refresh_token")
        return str(value) if value else None


def request_token(http: httpx.Client, spec: OAuthClientSpec, grant_type: str,
                  **params: str) -> TokenResponse:
    """POST a grant to the token endpoint; raise TokenEndpointError classified by kind."""
    body = prepare_token_request(grant_type, **params)
    headers = {"Content-Type": "application/x-www-form-urlencoded",
               "Accept": "application/json", **dict(spec.extra_token_headers)}
    uri, headers, body = ClientAuth(spec.client_id, spec.client_secret,
                                    spec.client_auth).prepare("POST", spec.token_url, headers, body)
    try:
        response = http.post(uri, headers=headers, content=body)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise TokenEndpointError(UNSENT, f"token endpoint unreachable: {type(exc).__name__}") \
            from None
    except httpx.TransportError as exc:
        raise TokenEndpointError(LOST, "token endpoint did not answer "
                                 f"({type(exc).__name__}); the request may have been processed") \
            from None
    tid = response.headers.get("intuit_tid")
    if response.status_code >= 500 or response.status_code == 429:
        raise TokenEndpointError(TRANSIENT, f"token endpoint answered {response.status_code}", tid)
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    if response.status_code != 200 or "access_token" not in data:
        error = str(data.get("error") or f"HTTP {response.status_code}")
        description = str(data.get("error_description") or "")
        kind = {"invalid_grant": INVALID_GRANT, "invalid_client": INVALID_CLIENT}.get(error,
                                                                                      REJECTED)
        raise TokenEndpointError(kind, f"token endpoint refused: {error}"
                                 + (f" ({description})" if description else ""), tid)
    for key in ("access_token", "refresh_token", "id_token"):
        register_secret(data.get(key))
    return TokenResponse(data=data, transaction_id=tid)


def refresh_grant(http: httpx.Client, spec: OAuthClientSpec, refresh_token: str) -> TokenResponse:
    return request_token(http, spec, "refresh_token", refresh_token=refresh_token)


def code_grant(http: httpx.Client, spec: OAuthClientSpec, code: str,
               redirect_uri: str) -> TokenResponse:
    return request_token(http, spec, "authorization_code", code=code, redirect_uri=redirect_uri)


def authorization_url(spec: OAuthClientSpec, redirect_uri: str, state: str) -> str:
    return str(prepare_grant_uri(spec.authorize_url, spec.client_id, "code",
                             redirect_uri=redirect_uri, scope=spec.scope, state=state))


def revoke(http: httpx.Client, spec: OAuthClientSpec, token: str) -> None:
    """Revoke a token (Intuit: JSON body, Basic client auth). Raises TokenEndpointError."""
    if not spec.revoke_url:
        raise TokenEndpointError(REJECTED, "this provider has no revocation endpoint")
    body: dict[str, str] = {"token": token}
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if spec.client_auth == "client_secret_post":
        body |= {"client_id": spec.client_id, "client_secret": spec.client_secret}
    else:
        _, headers, _ = ClientAuth(spec.client_id, spec.client_secret).prepare(
            "POST", spec.revoke_url, headers, "")
    try:
        response = http.post(spec.revoke_url, headers=headers, content=json.dumps(body))
    except httpx.TransportError as exc:
        raise TokenEndpointError(LOST, f"revocation endpoint did not answer "
                                 f"({type(exc).__name__})") from None
    if response.status_code != 200:
        raise TokenEndpointError(TRANSIENT if response.status_code >= 500 else REJECTED,
                                 f"revocation endpoint answered {response.status_code}",
                                 response.headers.get("intuit_tid"))
