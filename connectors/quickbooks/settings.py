"""The connector's configuration, from the mapping the core hands it (the [quickbooks]
keys declared in blippsync.settings, then [plugins.quickbooks], then the connection's own
settings). Missing keys take the defaults below, so a test can pass a small dict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from blippsync.errors import ConfigError

API_BASE_URLS = {
    "production": "https://quickbooks.api.intuit.com",
    "sandbox": "https://sandbox-quickbooks.api.intuit.com",
}
TOKEN_URL = "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer"
REVOKE_URL = "https://developer.api.intuit.com/v2/oauth2/tokens/revoke"
AUTHORIZE_URL = "https://appcenter.intuit.com/connect/oauth2"
SCOPE = "com.intuit.quickbooks.accounting"
MAX_PAGE_SIZE = 1000  # Intuit's cap on MAXRESULTS


@dataclass(frozen=True)
class QboSettings:
    client_id: str = ""
    client_secret: str = ""
    environment: str = "production"
    api_base_url: str = ""
    token_url: str = TOKEN_URL
    revoke_url: str = REVOKE_URL
    authorize_url: str = AUTHORIZE_URL
    redirect_uri: str = ""
    webhook_verifier_token: str = ""
    minor_version: int = 75
    requests_per_minute: int = 500
    max_in_flight: int = 10
    page_size: int = MAX_PAGE_SIZE
    use_cdc: bool = True
    timeout_seconds: float = 60.0
    max_retries: int = 5
    retry_after_default_seconds: float = 60.0  # Intuit: "wait 60 seconds" after a 429
    backoff_seconds: float = 1.0  # first retry of a 5xx/timeout, doubled each time

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> QboSettings:
        values = values or {}
        known = {f.name: f for f in fields(cls)}
        picked: dict[str, Any] = {}
        for key, value in values.items():
            name = key.removeprefix("quickbooks.")
            if name in known and value is not None and value != "":
                picked[name] = value
        s = cls(**picked)
        if s.environment not in API_BASE_URLS:
            raise ConfigError(f"quickbooks.environment must be production or sandbox, got "
                              f"{s.environment!r}")
        if not 1 <= int(s.page_size) <= MAX_PAGE_SIZE:
            raise ConfigError(f"quickbooks.page_size must be 1..{MAX_PAGE_SIZE}, got {s.page_size}")
        return s

    @property
    def base_url(self) -> str:
        return (self.api_base_url or API_BASE_URLS[self.environment]).rstrip("/")
