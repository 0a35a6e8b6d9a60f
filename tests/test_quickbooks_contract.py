"""The connector contract suite, run against the QuickBooks connector and the loopback fake."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.intuit import fake_intuit
from fakes.qbo_data import customer, invoice

from blippsync.testing.contract import ConnectorContract, make_context

REALM = "9341452732952867"


class StaticTokens:
    """The one access token the fake issued; the contract runs never need a refresh."""

    def __init__(self, token: str = "never-issued") -> None:
        self.token = token

    def access_token(self) -> str:
        return self.token

    def refresh_after_rejection(self, rejected_token: str) -> str:
        raise AssertionError("no refresh expected")


class TestQuickBooksConnector(ConnectorContract):
    connector_name = "quickbooks"

    @pytest.fixture(autouse=True)
    def _fake(self, tmp_path: Path) -> Iterator[None]:
        with fake_intuit() as (url, state), httpx.Client(timeout=5) as http:
            for i in range(1, 26):
                state.add("Customer", customer(i, i, active=i % 5 != 0))
            state.add("Invoice", invoice(1, 30, 120.0, 0.0, customer_id="3",
                                         linked=(("Payment", "77"),)))
            self.tokens = StaticTokens(state.issue()["access_token"])
            self.url, self.http = url, http
            yield

    def _settings(self, base: str) -> dict[str, Any]:
        return {"environment": "sandbox", "api_base_url": base, "page_size": 10}

    def make_context(self, tmp_path: Path, cursor: Any = None) -> Any:
        return make_context(cursor=cursor, settings=self._settings(self.url),
                            tokens=self.tokens, http=self.http, account_id=REALM,
                            now=datetime(2026, 11, 3, tzinfo=UTC),
                            options={"sleep": lambda seconds: None})

    def make_failing_context(self, tmp_path: Path) -> Any:
        return make_context(settings=self._settings("http://127.0.0.1:9"), tokens=self.tokens,
                            http=self.http, account_id=REALM, options={"sleep": lambda s: None})
