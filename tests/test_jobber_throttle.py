"""Pacing on the cost bucket, THROTTLED and 429 handling, against the loopback fake.

Scaling: the fake keeps Jobber's real bucket (10,000 points) but refills 50x faster
(25,000 points/s instead of 500), so a 5,000-client backfill that would take about
2.5 minutes against Jobber takes about 3 seconds here; the ratio of elapsed time to
the bucket's theoretical minimum, which is what the test checks, does not depend on it.
"""

from __future__ import annotations

import logging
import time

import httpx
from fakes.jobber_cost import requested_cost
from fakes.jobber_fake import FakeTokens, JobberFake, make_client, make_ctx

from blippsync.records import CustomerRecord
from connectors.jobber import JobberConnector
from connectors.jobber.graphql import GraphQLClient
from connectors.jobber.queries import CLIENTS
from connectors.jobber.throttle import CostThrottle

REAL_RESTORE_RATE = 500
SPEEDUP = 50


def test_5000_client_backfill_paces_within_20_percent_of_the_bucket_minimum() -> None:
    clients = [make_client(i) for i in range(1, 5001)]
    fake = JobberFake(clients=clients, maximum=10_000, restore_rate=REAL_RESTORE_RATE * SPEEDUP)
    waits: list[float] = []
    with fake, httpx.Client() as http:
        fake.level_at = time.monotonic()  # bucket full at the start
        started = time.monotonic()
        records = list(JobberConnector().sync(make_ctx(fake, http, waits=waits)))
        elapsed = time.monotonic() - started
    # every pause is reported where it happens, whatever the log level (the pass adds them up
    # for the daemon's throttle-wait metric)
    assert 0.5 * elapsed < sum(waits) <= elapsed
    assert sum(isinstance(r, CustomerRecord) for r in records) == 5000
    assert fake.throttled == 0  # none even reached the connector, let alone its caller
    minimum = (fake.spent - fake.maximum) / fake.restore_rate
    assert minimum > 2.0, "the test must be bucket-bound to mean anything"
    assert elapsed >= minimum * 0.98, "faster than the bucket allows: the fake is wrong"
    print(f"backfill {elapsed:.2f}s, minimum {minimum:.2f}s, ratio {elapsed / minimum:.3f}")
    assert elapsed <= minimum * 1.2, f"{elapsed:.2f}s vs theoretical minimum {minimum:.2f}s"


def test_a_query_never_asks_for_more_than_a_quarter_of_the_bucket() -> None:
    with JobberFake(clients=[make_client(i) for i in range(300)]) as fake, \
            httpx.Client() as http:
        list(JobberConnector().sync(make_ctx(fake, http)))
        costs = [requested_cost(q, v) for q, v in fake.queries]
    assert max(costs) <= 0.25 * fake.maximum


def test_throttled_answer_is_retried_after_the_computed_wait() -> None:
    fake = JobberFake(clients=[make_client(i) for i in range(100)], restore_rate=20_000)
    sleeps: list[float] = []
    with fake, httpx.Client() as http:
        fake.level, fake.level_at = 0, time.monotonic()  # someone else drained the bucket
        throttle = CostThrottle(sleep=lambda s: (sleeps.append(s), time.sleep(s)))
        gql = GraphQLClient(http, fake.graphql_url, "2025-04-16", FakeTokens(fake),
                            logging.getLogger("t"), throttle=throttle)
        data = gql.execute(CLIENTS, {"first": 100, "after": None, "filter": None})
    assert len(data["clients"]["nodes"]) == 100
    assert fake.throttled == 1 and gql.throttled == 1
    # one wait sized by restoreRate: (requested - available) / rate, not a blind sleep
    assert len(sleeps) == 1 and 0.05 < sleeps[0] < 0.2


def test_429_backs_off_then_succeeds() -> None:
    sleeps: list[float] = []
    with JobberFake(clients=[make_client(1)]) as fake, httpx.Client() as http:
        fake.pending_statuses = [429, 429]
        gql = GraphQLClient(http, fake.graphql_url, "2025-04-16", FakeTokens(fake),
                            logging.getLogger("t"), sleep=sleeps.append)
        data = gql.execute(CLIENTS, {"first": 10, "after": None, "filter": None})
    assert len(data["clients"]["nodes"]) == 1
    # exponential backoff (2 s, 4 s) plus a jitter of at most the first backoff
    assert len(sleeps) == 2 and 2.0 <= sleeps[0] <= 4.0 and 4.0 <= sleeps[1] <= 6.0


def test_throttled_body_with_http_429_waits_on_the_bucket_not_a_blind_backoff() -> None:
    """One third-party doc says THROTTLED comes as a 429: the body still decides the wait."""
    import json

    throttled = json.dumps({"errors": [{"message": "Throttled",
                                        "extensions": {"code": "THROTTLED"}}],
                            "extensions": {"cost": {"requestedQueryCost": 1000,
                                                    "actualQueryCost": 0, "throttleStatus": {
                                                        "maximumAvailable": 10000,
                                                        "currentlyAvailable": 750,
                                                        "restoreRate": 500}}}}).encode()
    answers = [httpx.Response(429, content=throttled),
               httpx.Response(200, json={"data": {"account": {"id": "MQ==", "name": "A"}}})]
    sleeps: list[float] = []
    transport = httpx.MockTransport(lambda request: answers.pop(0))
    with httpx.Client(transport=transport) as http:
        gql = GraphQLClient(http, "https://api.getjobber.com/api/graphql", "2025-04-16",
                            _Static(), logging.getLogger("t"),
                            throttle=CostThrottle(sleep=sleeps.append), sleep=sleeps.append)
        data = gql.execute("query Account { account { id name } }")
    assert data["account"]["id"] == "MQ==" and gql.throttled == 1
    assert len(sleeps) == 1 and 0.5 <= sleeps[0] <= 0.7  # (1000 + margin - 750) / 500


class _Static:
    def access_token(self) -> str:
        return "token"

    def refresh_after_rejection(self, rejected_token: str) -> str:
        return "token"
