"""The Jobber connector's polling pass against the loopback fake (real HTTP, no mocks)."""

from __future__ import annotations

from datetime import datetime, timedelta

import httpx
import pytest
from fakes.jobber_fake import (
    ACCOUNT_ID,
    BASE_TIME,
    FakeTokens,
    JobberFake,
    make_client,
    make_ctx,
    make_invoice,
    make_job,
)

from blippsync.errors import AuthError
from blippsync.records import Checkpoint, CustomerRecord, EventRecord
from connectors.jobber import JobberConnector

NOW = BASE_TIME + timedelta(days=2)


def world(n_clients: int = 250) -> JobberFake:
    clients = [make_client(i) for i in range(1, n_clients + 1)]
    def hours_ago(i: int, every: int) -> datetime | None:
        return NOW - timedelta(hours=i) if i % every == 0 else None

    jobs = [make_job(i, clients[i % n_clients], hours_ago(i, 2)) for i in range(1, 41)]
    invoices = [make_invoice(i, clients[i % n_clients], hours_ago(i, 3)) for i in range(1, 31)]
    return JobberFake(clients=clients, jobs=jobs, invoices=invoices)


def test_first_pass_reads_clients_completed_jobs_and_paid_invoices() -> None:
    with world() as fake, httpx.Client() as http:
        records = list(JobberConnector().sync(make_ctx(fake, http, now=NOW)))
    customers = [r for r in records if isinstance(r, CustomerRecord)]
    events = [r for r in records if isinstance(r, EventRecord)]
    assert len(customers) == 250
    assert len({c.external_id for c in customers}) == 250
    jobs = [e for e in events if e.event_type == "job_completed"]
    invoices = [e for e in events if e.event_type == "invoice_paid"]
    assert len(jobs) == 20 and len(invoices) == 10
    assert jobs[0].dedupe_key.startswith(f"jobber:{ACCOUNT_ID}:job:")
    assert jobs[0].dedupe_key.endswith(":completed")
    assert all(e.customer_external_id for e in events)
    final = records[-1]
    assert isinstance(final, Checkpoint) and "pass" not in final.cursor
    assert set(final.cursor["watermarks"]) == {"clients", "jobs", "invoices"}
    # every query carried the version header and a page size inside the bucket
    assert all(h["x-jobber-graphql-version"] == "2025-04-16" for h in fake.headers_seen)
    assert fake.throttled == 0


def test_mapping_of_a_client() -> None:
    node = make_client(30)
    node["phones"] = [{"number": "111", "primary": False, "smsAllowed": True},
                      {"number": "(415) 555-0030", "primary": True, "smsAllowed": False}]
    node["emails"] = [{"address": "a@example.com", "primary": False},
                      {"address": "b@example.com", "primary": True}]
    with JobberFake(clients=[node]) as fake, httpx.Client() as http:
        (record,) = [r for r in JobberConnector().sync(make_ctx(fake, http, now=NOW))
                     if isinstance(r, CustomerRecord)]
    assert record.name == "Client 30"
    assert record.email == "b@example.com"
    assert record.phone == "(415) 555-0030" and record.sms_allowed is False
    assert record.address == "30 Main St, Springfield, IL 62701, US"
    assert record.review_requests_allowed is False  # receivesReviewRequests false
    assert record.archived is False


def test_second_pass_is_incremental_and_resumes_mid_pass() -> None:
    with world() as fake, httpx.Client() as http:
        connector = JobberConnector()
        records = list(connector.sync(make_ctx(fake, http, now=NOW, page_size=50)))
        checkpoints = [r for r in records if isinstance(r, Checkpoint)]
        mid = checkpoints[1].cursor  # after the second page of clients
        assert mid["pass"]["stream"] == "clients" and mid["pass"]["after"]
        resumed = list(connector.sync(make_ctx(fake, http, now=NOW, cursor=mid, page_size=50)))
        resumed_customers = [r for r in resumed if isinstance(r, CustomerRecord)]
        assert len(resumed_customers) == 150  # pages 3..5 only
        # a later pass with the final cursor reads only what changed since (minus overlap)
        fake.clients.append(make_client(999, updated=NOW + timedelta(hours=5)))
        later = list(connector.sync(make_ctx(fake, http, now=NOW, cursor=records[-1].cursor)))
    assert [r.external_id for r in later if isinstance(r, CustomerRecord)] == \
        [make_client(999)["id"]]


def test_expired_token_text_plain_401_refreshes_once_and_retries() -> None:
    with world(5) as fake, httpx.Client() as http:
        tokens = FakeTokens(fake, token="expired-token")
        records = list(JobberConnector().sync(make_ctx(fake, http, now=NOW, tokens=tokens)))
    assert tokens.refreshes == 1
    assert sum(isinstance(r, CustomerRecord) for r in records) == 5


def test_a_second_401_after_refresh_needs_a_human() -> None:
    class DeadTokens(FakeTokens):
        def refresh_after_rejection(self, rejected_token: str) -> str:
            self.refreshes += 1
            return "still-bad"

    with world(5) as fake, httpx.Client() as http:
        tokens = DeadTokens(fake, token="bad")
        with pytest.raises(AuthError, match="reconnect"):
            list(JobberConnector().sync(make_ctx(fake, http, now=NOW, tokens=tokens)))
    assert tokens.refreshes == 1


def test_account_id_is_queried_when_the_connection_has_none() -> None:
    with world(3) as fake, httpx.Client() as http:
        records = list(JobberConnector().sync(make_ctx(fake, http, now=NOW, account_id="")))
    keys = [r.dedupe_key for r in records if isinstance(r, EventRecord)]
    assert keys and all(k.startswith(f"jobber:{ACCOUNT_ID}:") for k in keys)
