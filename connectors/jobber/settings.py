"""The connector's configuration, read from whatever mapping the core hands it.

The core declares the keys in `blippsync.settings` under `[jobber]`; a connection's own
settings (and `[plugins.jobber]`) may override them. Keys are accepted bare
(`client_id`) or dotted (`jobber.client_id`), so the lead can pass either shape.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from blippsync.errors import ConfigError

GRAPHQL_URL = "https://api.getjobber.com/api/graphql"
TOKEN_URL = "https://api.getjobber.com/api/oauth/token"
AUTHORIZE_URL = "https://api.getjobber.com/api/oauth/authorize"
API_VERSION = "2025-04-16"  # newest in the changelog scraped 2025-10-20 (api/jobber.md)
MAX_PAGE_SIZE = 100  # Jobber assumes 100 when `first` is omitted; never ask for more


@dataclass(frozen=True)
class JobberSettings:
    client_id: str = ""
    client_secret: str = ""
    graphql_url: str = GRAPHQL_URL
    token_url: str = TOKEN_URL
    authorize_url: str = AUTHORIZE_URL
    api_version: str = API_VERSION
    redirect_uri: str = ""
    page_size: int = MAX_PAGE_SIZE
    max_query_cost_fraction: float = 0.25  # of the bucket, per query
    overlap_seconds: int = 3600  # re-read this much before each watermark
    initial_lookback_days: int = 30  # events read on a first or --full pass
    request_timeout_seconds: float = 30.0
    backoff_seconds: float = 2.0  # first retry of a 429/5xx/timeout, doubled each time

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None) -> JobberSettings:
        values = values or {}
        kwargs: dict[str, Any] = {}
        for name, default in cls.__dataclass_fields__.items():
            raw = values.get(name, values.get(f"jobber.{name}"))
            if raw is None or raw == "":
                continue
            kind: type[Any] = type(default.default)  # every field has a plain default
            try:
                kwargs[name] = kind(raw)
            except (TypeError, ValueError):
                raise ConfigError(f"jobber.{name}: expected {kind.__name__}, got {raw!r}") from None
        settings = cls(**kwargs)
        if not 1 <= settings.page_size <= MAX_PAGE_SIZE:
            raise ConfigError(f"jobber.page_size: must be 1..{MAX_PAGE_SIZE}, "
                              f"got {settings.page_size}")
        if not 0 < settings.max_query_cost_fraction <= 1:
            raise ConfigError("jobber.max_query_cost_fraction: must be in (0, 1]")
        return settings
