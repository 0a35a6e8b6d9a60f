"""Jobber's OAuth details the generic token vault cannot guess.

Jobber sends no `expires_in`: the access token is a JWT whose `exp` claim (read without
verifying the signature, which only Jobber can check) is the expiry; a refresh answer may
also carry `expires_at` as "2024-04-09 21:04:31 UTC". Client credentials go in the form
body (client_secret_post). The authorize URL has no `scope` (scopes are set per app in
the Developer Center) and `state` is optional: marketplace installs send none.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from blippsync.connector import OAuthClientSpec
from connectors.jobber.settings import JobberSettings

DEFAULT_LIFETIME = timedelta(minutes=60)  # Jobber's documented default
_EXPIRES_AT_FORMATS = ("%Y-%m-%d %H:%M:%S UTC", "%Y-%m-%d %H:%M:%S %z", "%Y-%m-%dT%H:%M:%S%z")


def oauth_spec(settings: Mapping[str, Any]) -> OAuthClientSpec:
    s = JobberSettings.from_mapping(settings)
    return OAuthClientSpec(token_url=s.token_url, authorize_url=s.authorize_url,
                           client_id=s.client_id, client_secret=s.client_secret,
                           client_auth="client_secret_post", scope=None)


def authorize_url(settings: Mapping[str, Any], state: str | None = None) -> str:
    s = JobberSettings.from_mapping(settings)
    params = {"response_type": "code", "client_id": s.client_id, "redirect_uri": s.redirect_uri}
    if state:
        params["state"] = state
    return f"{s.authorize_url}?{urlencode(params)}"


def jwt_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified; {} when `token` is not one."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        return {}
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, TypeError):
        return {}
    return claims if isinstance(claims, dict) else {}


def token_account(access_token: str) -> str | None:
    """The numeric account id a Jobber access token was issued for (its `account_id`
    claim), or None when the token does not say."""
    value = jwt_claims(access_token).get("account_id")
    return str(value) if isinstance(value, int | str) and str(value).isdigit() else None


def account_number(encoded_id: str) -> str | None:
    """The number in an account EncodedId (base64 of gid://Jobber/Account/<n>), if any."""
    try:
        text = base64.b64decode(encoded_id + "=" * (-len(encoded_id) % 4), validate=True).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    prefix = "gid://Jobber/Account/"
    number = text[len(prefix):] if text.startswith(prefix) else ""
    return number if number.isdigit() else None


def token_expiry(token_response: Mapping[str, Any], now: datetime) -> datetime:
    """JWT `exp`, else `expires_at`, else an hour from `now` (never `expires_in`)."""
    exp = jwt_claims(str(token_response.get("access_token") or "")).get("exp")
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return datetime.fromtimestamp(exp, UTC)
    parsed = _parse_expires_at(token_response.get("expires_at"))
    return parsed if parsed is not None else now + DEFAULT_LIFETIME


def _parse_expires_at(value: Any) -> datetime | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    for fmt in _EXPIRES_AT_FORMATS:
        try:
            parsed = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return None
