"""The connector contract suite, run against the Jobber connector and the loopback fake."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.jobber_fake import (
    ACCOUNT_ID,
    BASE_TIME,
    FakeTokens,
    JobberFake,
    make_client,
    make_invoice,
    make_job,
)

from blippsync.testing.contract import ConnectorContract, make_context

NOW = BASE_TIME + timedelta(days=2)


class TestJobberConnector(ConnectorContract):
    connector_name = "jobber"

    @pytest.fixture(autouse=True)
    def _fake(self) -> Iterator[None]:
        clients = [make_client(i) for i in range(1, 31)]
        jobs = [make_job(i, clients[i], NOW - timedelta(hours=i)) for i in range(1, 5)]
        invoices = [make_invoice(i, clients[i], NOW - timedelta(hours=i)) for i in range(1, 4)]
        with JobberFake(clients=clients, jobs=jobs, invoices=invoices) as fake, \
                httpx.Client(timeout=5) as http:
            self.fake, self.http = fake, http
            yield

    def make_context(self, tmp_path: Path, cursor: Any = None) -> Any:
        return make_context(cursor=cursor, settings=self.fake.settings(page_size=7),
                            tokens=FakeTokens(self.fake), http=self.http,
                            account_id=ACCOUNT_ID, now=NOW)

    def make_failing_context(self, tmp_path: Path) -> Any:
        # nothing listens on port 9: every try is refused, retried at once (no backoff)
        return make_context(settings={"graphql_url": "http://127.0.0.1:9/api/graphql",
                                      "backoff_seconds": 0.0},
                            tokens=FakeTokens(self.fake), http=self.http, account_id=ACCOUNT_ID,
                            now=NOW)
