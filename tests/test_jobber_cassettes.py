"""The connector against recorded-shape Jobber answers (vcrpy, record mode `none`).

Each interaction is matched on method, URL, GraphQL operation name and variables, so a
changed filter, page size or cursor fails the test instead of replaying the wrong answer.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import vcr

from blippsync.connector import ConnectorContext
from blippsync.records import Checkpoint, CustomerRecord, EventRecord
from connectors.jobber import JobberConnector, app_disconnect
from connectors.jobber.graphql import GraphQLClient, GraphQLError, JobberDisconnected
from connectors.jobber.queries import CLIENTS, COMPLETED_JOBS
from connectors.jobber.throttle import CostThrottle

CASSETTES = Path(__file__).parent / "cassettes" / "jobber"
ACCOUNT = "Z2lkOi8vSm9iYmVyL0FjY291bnQvMjQ4NjkzNA=="
NOW = datetime(2025, 6, 5, 12, 0, tzinfo=UTC)
SECRET_TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3NDkxMzAwMDB9.c2VjcmV0LXNpZ25hdHVyZQ"
_OPERATION = re.compile(r"\b(query|mutation)\s+(\w+)")


def _graphql(request: Any) -> tuple[str | None, Any]:
    body = request.body.decode() if isinstance(request.body, bytes) else request.body
    payload = json.loads(body or "{}")
    match = _OPERATION.search(payload.get("query", ""))
    return (match.group(2) if match else None), payload.get("variables")


def graphql_operation(r1: Any, r2: Any) -> None:
    assert _graphql(r1) == _graphql(r2), f"{_graphql(r1)} != {_graphql(r2)}"


def recorder() -> vcr.VCR:
    v = vcr.VCR(cassette_library_dir=str(CASSETTES), record_mode="none",
                match_on=["method", "uri", "graphql_operation"],
                filter_headers=[("authorization", "<REDACTED>")],
                filter_post_data_parameters=["client_secret", "refresh_token", "code"])
    v.register_matcher("graphql_operation", graphql_operation)
    return v


class StaticTokens:
    def __init__(self, token: str = SECRET_TOKEN) -> None:
        self.token, self.refreshes = token, 0

    def access_token(self) -> str:
        return self.token

    def refresh_after_rejection(self, rejected_token: str) -> str:
        self.refreshes += 1
        self.token = SECRET_TOKEN + "x"
        return self.token


def ctx(http: httpx.Client, tokens: Any = None, account_id: str = ACCOUNT,
        **settings: Any) -> ConnectorContext:
    return ConnectorContext(business_id=uuid.uuid4(), connection_id=None, account_id=account_id,
                            settings={"client_id": "id", "client_secret": "s", **settings},
                            cursor=None, http=http, log=logging.getLogger("test.jobber"),
                            tokens=tokens or StaticTokens(), now=NOW)


def client(http: httpx.Client, tokens: Any = None, sleeps: list[float] | None = None
           ) -> GraphQLClient:
    sink = sleeps if sleeps is not None else []
    return GraphQLClient(http, "https://api.getjobber.com/api/graphql", "2025-04-16",
                         tokens or StaticTokens(), logging.getLogger("test.jobber"),
                         throttle=CostThrottle(sleep=sink.append), sleep=sink.append)


def test_full_pass_pages_filters_and_mapping(caplog: pytest.LogCaptureFixture) -> None:
    with recorder().use_cassette("full_pass.yaml") as cassette, httpx.Client() as http:
        records = list(JobberConnector().sync(ctx(http, page_size=2)))
        assert cassette.all_played
    customers = [r for r in records if isinstance(r, CustomerRecord)]
    events = [r for r in records if isinstance(r, EventRecord)]
    assert [c.name for c in customers] == ["Client 1", "Client 2", "Acme Ltd"]
    assert customers[1].archived is True and customers[1].review_requests_allowed is False
    assert customers[2].email is None and customers[2].phone is None
    assert customers[0].address == "1 Elm St, Calgary, AB T2P 1J9, Canada"
    assert [(e.event_type, e.dedupe_key) for e in events] == [
        ("job_completed", f"jobber:{ACCOUNT}:job:Z2lkOi8vSm9iYmVyL0pvYi84ODQzMjE=:completed"),
        ("invoice_paid", f"jobber:{ACCOUNT}:invoice:Z2lkOi8vSm9iYmVyL0ludm9pY2UvNTUxMjM=:paid")]
    assert events[0].occurred_at == datetime(2025, 6, 4, 21, 10, tzinfo=UTC)
    assert events[1].customer_external_id == customers[1].external_id
    assert isinstance(records[-1], Checkpoint)
    assert records[-1].cursor["watermarks"]["jobs"] == NOW.isoformat()
    warnings = [r for r in caplog.records  # the connector's own lines (vcr logs bodies at INFO)
                if r.levelname == "WARNING" and "scheduled to stop" in r.getMessage()]
    assert len(warnings) == 1  # the versioning warning, once per run though sent 4 times


def test_throttled_is_retried_after_a_wait_sized_by_restore_rate() -> None:
    sleeps: list[float] = []
    with recorder().use_cassette("throttled.yaml") as cassette, httpx.Client() as http:
        gql = client(http, sleeps=sleeps)
        data = gql.execute(CLIENTS, {"first": 100, "after": None, "filter": None})
        assert cassette.all_played
    assert len(data["clients"]["nodes"]) == 1 and gql.throttled == 1
    # 1802 requested, 1300 available, 500 points/s: about one second, not a full refill
    assert len(sleeps) == 1 and 1.0 <= sleeps[0] <= 1.2


def test_text_plain_401_refreshes_once_then_retries() -> None:
    tokens = StaticTokens()
    with recorder().use_cassette("expired_token.yaml") as cassette, httpx.Client() as http:
        data = client(http, tokens).execute(CLIENTS, {"first": 100, "after": None,
                                                      "filter": None})
        assert cassette.all_played
    assert tokens.refreshes == 1 and data["clients"]["nodes"]


def test_errors_inside_a_200_are_errors() -> None:
    with recorder().use_cassette("hidden_field.yaml"), httpx.Client() as http:
        flt = {"completedAt": {"after": "2025-05-06T12:00:00+00:00",
                               "before": "2025-06-05T12:00:00+00:00"}}
        with pytest.raises(GraphQLError, match="hidden due to permissions"):
            client(http).execute(COMPLETED_JOBS, {"first": 100, "after": None, "filter": flt})


def test_disconnected_app_is_reported_as_such() -> None:
    with recorder().use_cassette("disconnected.yaml"), httpx.Client() as http, \
            pytest.raises(JobberDisconnected, match="disconnected this app"):
        JobberConnector().account_id(ctx(http, account_id=""), client(http))


def test_app_disconnect_mutation() -> None:
    with recorder().use_cassette("app_disconnect.yaml") as cassette, httpx.Client() as http:
        app_disconnect(client(http))
        assert cassette.all_played


def test_no_secret_in_any_cassette() -> None:
    for path in CASSETTES.glob("*.yaml"):
        text = path.read_text()
        assert "Bearer" not in text and SECRET_TOKEN not in text, path.name
        assert re.search(r"eyJ[\w-]+\.[\w-]+\.[\w-]+", text) is None, path.name
        assert "client_secret" not in text and "refresh_token" not in text, path.name
