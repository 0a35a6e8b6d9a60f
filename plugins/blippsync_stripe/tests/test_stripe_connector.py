"""The stripe connector through blippsync's connector contract suite (a loopback Stripe in
the documented shapes), plus its event parsing and reconciliation choices."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from blippsync_stripe import StripeConnector, events
from fake_stripe import API_KEY, FakeStripe, subscription
from stripe_events import payment_failed, subscription_event

from blippsync.errors import ConnectorError, TransientError
from blippsync.records import Checkpoint, SubscriptionStatus
from blippsync.testing.contract import ConnectorContract, make_context

CUSTOMER = "cus_NffrFeUfNV2Hib"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeStripe]:
    with FakeStripe() as server:
        server.subscriptions = [
            subscription("sub_old1", CUSTOMER, "canceled", 1_690_000_000),
            subscription("sub_new2", CUSTOMER, "active", 1_700_000_000),
            subscription("sub_other", "cus_Someone", "past_due", 1_700_000_500)]
        yield server


def _context(url: str, cursor: Any = None, api_key: str = API_KEY, **settings: Any) -> Any:
    return make_context(account_id=CUSTOMER, now=NOW, cursor=cursor,
                        credentials={"api_key": api_key},
                        settings={"base_url": url, "page_size": 1, **settings})


class TestStripeContract(ConnectorContract):
    connector_name = "stripe"
    final_cursor_replays_input = True  # each pass re-reads the customer's current state

    @pytest.fixture(autouse=True)
    def _server(self, fake: FakeStripe) -> None:
        self.url = fake.url

    def make_context(self, tmp_path: Path, cursor: Any = None) -> Any:
        return _context(self.url, cursor=cursor)

    def make_failing_context(self, tmp_path: Path) -> Any:
        return _context(self.url, api_key="sk_test_wrong")


def test_reconciliation_pages_with_starting_after_and_picks_the_live_subscription(
        fake: FakeStripe) -> None:
    fake.requests.clear()
    records = list(StripeConnector().sync(_context(fake.url)))
    assert records[0] == SubscriptionStatus("active", NOW, "sub_new2",
                                            f"stripe reconciliation of {CUSTOMER}")
    assert isinstance(records[-1], Checkpoint) and records[-1].cursor["subscriptions"] == 2
    pages = [r for r in fake.requests if r["path"] == "/v1/subscriptions"]
    assert [p.get("starting_after") for p in pages] == [None, "sub_new2"]
    assert all(p["customer"] == CUSTOMER and p["status"] == "all" and p["limit"] == "1"
               for p in pages)


def test_api_faults_are_reported_as_blippsync_errors(fake: FakeStripe) -> None:
    fake.fail_next = [429]
    with pytest.raises(TransientError, match="429: Request rate limit exceeded"):
        list(StripeConnector().sync(_context(fake.url)))
    with pytest.raises(TransientError, match="cannot reach"):
        list(StripeConnector().sync(_context("http://127.0.0.1:9")))
    with pytest.raises(ConnectorError, match="API key was refused") as refused:
        list(StripeConnector().sync(_context(fake.url, api_key="sk_test_wrongkey123")))
    assert "sk_test_wrongkey123" not in str(refused.value)
    with pytest.raises(ConnectorError, match="not a Stripe customer id"):
        list(StripeConnector().sync(make_context(account_id="", credentials={"api_key": "x"})))


def test_subscription_events_become_notices_with_their_time_and_status() -> None:
    body = subscription_event("customer.subscription.updated", "sub_new2", CUSTOMER,
                              "past_due", created=1_700_000_100, event_id="evt_1")
    (notice,) = events.notices_from(body)
    assert (notice.account_id, notice.entity_id, notice.operation, notice.delivery_id) == \
        (CUSTOMER, "sub_new2", "customer.subscription.updated", "evt_1")
    assert notice.occurred_at == datetime.fromtimestamp(1_700_000_100, UTC)
    assert notice.extra["status"] == "past_due"
    deleted = subscription_event("customer.subscription.deleted", "sub_new2", CUSTOMER,
                                 "active", created=1_700_000_200, event_id="evt_2")
    assert events.notices_from(deleted)[0].extra["status"] == "canceled"
    ctx = make_context(account_id=CUSTOMER)
    (status,) = StripeConnector().fetch(ctx, [notice])
    assert status == SubscriptionStatus("past_due", notice.occurred_at, "sub_new2",
                                        "stripe event evt_1 (customer.subscription.updated)")
    assert list(StripeConnector().fetch(make_context(account_id="cus_other"), [notice])) == []


@pytest.mark.parametrize("new_shape", [False, True])
def test_payment_failed_of_a_subscription_means_past_due(new_shape: bool) -> None:
    body = payment_failed("in_1", CUSTOMER, "sub_new2", created=1_700_000_300,
                          event_id="evt_3", new_shape=new_shape)
    (notice,) = events.notices_from(body)
    assert (notice.entity_id, notice.extra["status"]) == ("sub_new2", "past_due")
    one_off = payment_failed("in_2", CUSTOMER, None, created=1, event_id="evt_4")
    assert events.notices_from(one_off) == []


def test_other_event_types_are_acknowledged_and_ignored() -> None:
    from stripe_events import event

    assert events.notices_from(event("charge.succeeded", {"id": "ch_1", "customer": CUSTOMER},
                                     created=1, event_id="evt_5")) == []


def test_http_client_is_the_contexts(fake: FakeStripe) -> None:
    seen: list[str] = []
    transport = httpx.HTTPTransport()

    class Spy(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(str(request.url))
            return transport.handle_request(request)

    ctx = make_context(account_id=CUSTOMER, now=NOW, http=httpx.Client(transport=Spy()),
                       settings={"base_url": fake.url}, credentials={"api_key": API_KEY})
    list(StripeConnector().sync(ctx))
    assert seen and all(u.startswith(fake.url) for u in seen)


def test_reconciliation_replays_stripes_documented_list_pages() -> None:
    """A cassette written from Stripe's API reference (not from the fake): two pages joined
    by starting_after; the newest subscriptions are over, so the live past_due one counts."""
    import vcr

    def same_version(r1: Any, r2: Any) -> None:
        assert r1.headers.get("Stripe-Version") == r2.headers.get("Stripe-Version")

    replay = vcr.VCR(cassette_library_dir=str(Path(__file__).parent / "cassettes"),
                     record_mode="none", filter_headers=["authorization"])
    replay.register_matcher("stripe_version", same_version)
    replay.match_on = ("method", "scheme", "host", "path", "query", "stripe_version")
    ctx = make_context(account_id="cus_Na6dX7aXxi11N4", now=NOW, settings={"page_size": 2},
                       credentials={"api_key": "sk_test_cassette"})
    with replay.use_cassette("list_subscriptions_two_pages.yaml") as cassette:
        records = list(StripeConnector().sync(ctx))
    assert cassette.all_played
    assert records[0] == SubscriptionStatus("past_due", NOW, "sub_1MowQVLkdIwHu7ixeRlqHVzs",
                                            "stripe reconciliation of cus_Na6dX7aXxi11N4")
    assert records[-1] == Checkpoint({"reconciled_at": NOW.isoformat(), "subscriptions": 3})
