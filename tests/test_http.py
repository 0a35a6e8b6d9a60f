"""The daemon's HTTP surface over real loopback HTTP: webhooks, review links, metrics."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import test_daemon_support as support
from signing import hmac_sha256_base64
from test_daemon_support import FakeRemote, sign, webhook_body

from blippsync.businesses import add_business
from blippsync.config import Config, load_config
from blippsync.connections import ensure_connection
from blippsync.daemon.worker import Worker
from blippsync.database import Database
from blippsync.http import HttpServer, HttpState, build_app
from blippsync.metrics import DaemonMetrics
from blippsync.plugins import load_plugins

ACCOUNT = "acct-1"


@pytest.fixture
def remote() -> Iterator[FakeRemote]:
    with FakeRemote() as fake:
        yield fake


@pytest.fixture
def http_config(tmp_path: Path, database_url: str, remote: FakeRemote) -> Config:
    path = support.write_config(tmp_path / "config.toml", database_url, remote.url)
    return load_config(path, environ={}).with_values(http__max_body_bytes=2048)


@pytest.fixture
def plugins() -> Any:
    return load_plugins(extra=[("loopback", support)])


@pytest.fixture
def connection(db: Database) -> Any:
    business = add_business(db, name="Loop Co", owner_email="o@loop.test", timezone="UTC")
    with db.begin() as conn:
        return ensure_connection(conn, business, "loopback", ACCOUNT)


@pytest.fixture
def server(http_config: Config, db: Database, plugins: Any) -> Iterator[tuple[str, HttpState]]:
    state = HttpState(config=http_config, db=db, plugins=plugins, metrics=DaemonMetrics(db),
                      scheduler_age=lambda: 0.0, daemon_id="test")
    srv = HttpServer(build_app(state), "127.0.0.1", 0)
    srv.start()
    yield f"http://127.0.0.1:{srv.port}", state
    srv.stop()


def _post(base: str, body: bytes, *, signature: str | None = None,
          content_type: str = "application/json", connector: str = "loopback") -> httpx.Response:
    headers = {"content-type": content_type,
               support.SIGNATURE_HEADER: signature if signature is not None else sign(body)}
    return httpx.post(f"{base}/webhooks/{connector}", content=body, headers=headers)


def _event(item: str, event_id: str | None = None) -> dict[str, Any]:
    return {"id": event_id or uuid.uuid4().hex, "account": ACCOUNT, "item": item,
            "op": "create", "at": "2026-11-25T12:00:00+00:00"}


def _count(db: Database, sql: str, **params: Any) -> int:
    with db.connect() as conn:
        return int(conn.execute(sa.text(sql), params).scalar_one())


def test_valid_delivery_is_stored_for_its_connection(server, db, connection) -> None:
    base, _state = server
    response = _post(base, webhook_body([_event("i1"), _event("i2")]))
    assert response.status_code == 200 and response.json() == {"received": 2, "duplicates": 0}
    with db.connect() as conn:
        rows = conn.execute(sa.text("SELECT entity_id, state, connection_id, business_id "
                                    "FROM webhook_deliveries ORDER BY entity_id")).all()
    assert [(r.entity_id, r.state, r.connection_id) for r in rows] == [
        ("i1", "pending", connection.id), ("i2", "pending", connection.id)]
    assert rows[0].business_id == connection.business_id


def test_tampered_or_unsigned_delivery_gets_401_and_stores_nothing(server, db, connection) -> None:
    base, state = server
    body = webhook_body([_event("i1")])
    assert _post(base, body, signature=sign(body + b" ")).status_code == 401
    assert _post(base, body.replace(b"i1", b"i9"), signature=sign(body)).status_code == 401
    assert _post(base, body, signature="").status_code == 401
    assert _count(db, "SELECT count(*) FROM webhook_deliveries") == 0
    sample = state.metrics.registry.get_sample_value(
        "blippsync_webhook_deliveries_total", {"connector": "loopback", "outcome": "bad_signature"})
    assert sample == 3


def test_replayed_delivery_is_recognised_and_yields_one_event(server, db, connection, remote,
                                                              http_config, plugins) -> None:
    base, state = server
    remote.add(ACCOUNT, "i1")
    body = webhook_body([_event("i1", "evt-1")])
    assert _post(base, body).json() == {"received": 1, "duplicates": 0}
    assert _post(base, body).json() == {"received": 0, "duplicates": 1}
    # Jobber-style: no delivery id, the same item and time name the same change
    jobber_like = webhook_body([{**_event("i1"), "id": None}])
    assert _post(base, jobber_like).json() == {"received": 1, "duplicates": 0}
    assert _post(base, jobber_like).json() == {"received": 0, "duplicates": 1}
    assert _count(db, "SELECT sum(redeliveries) FROM webhook_deliveries") == 2
    worker = Worker(db, http_config, plugins, state.metrics, "test-owner")
    import threading

    worker.process_notices(connection, plugins.connector("loopback"), threading.Event())
    assert _count(db, "SELECT count(*) FROM webhook_deliveries WHERE state = 'processed'") == 2
    assert _count(db, "SELECT count(*) FROM trigger_events") == 1
    assert _count(db, "SELECT count(*) FROM customers WHERE external_id = 'i1'") == 1
    assert _post(base, body).json() == {"received": 0, "duplicates": 1}  # still recognised


def test_oversized_body_gets_413(server, db, connection) -> None:
    base, _state = server
    big = webhook_body([_event(f"item-{n}") for n in range(40)])
    assert len(big) > 2048
    assert _post(base, big).status_code == 413

    def chunks() -> Iterator[bytes]:  # no content-length: counted while streaming
        for start in range(0, len(big), 512):
            yield big[start:start + 512]

    response = httpx.post(f"{base}/webhooks/loopback", content=chunks(),
                          headers={"content-type": "application/json",
                                   support.SIGNATURE_HEADER: sign(big)})
    assert response.status_code == 413
    assert _count(db, "SELECT count(*) FROM webhook_deliveries") == 0


def test_content_types(server, db, connection) -> None:
    base, _state = server
    body = webhook_body([_event("i1")])
    assert _post(base, body, content_type="text/plain").status_code == 415
    assert _post(base, body, content_type="application/x-www-form-urlencoded").status_code == 415
    assert _post(base, body, content_type="application/cloudevents+json").status_code == 200
    assert _post(base, body, content_type="application/json; charset=utf-8").status_code == 200
    assert _post(base, body, connector="nosuch").status_code == 404


def test_unmatched_account_is_kept_but_not_fetched(server, db, connection) -> None:
    base, _state = server
    body = webhook_body([{**_event("i1"), "account": "someone-else"}])
    assert _post(base, body).status_code == 200
    assert _count(db, "SELECT count(*) FROM webhook_deliveries WHERE state = 'unmatched'") == 1


def test_review_link_records_click_and_redirects(server, db) -> None:
    base, _state = server
    business = add_business(db, name="Review Co", owner_email="r@x.test", timezone="UTC")
    with db.begin() as conn:
        conn.execute(sa.text("UPDATE businesses SET google_review_url = :u WHERE id = :id"),
                     {"u": "https://g.page/r/review-co/review", "id": business})
        conn.execute(sa.text("INSERT INTO review_requests (business_id, channel, status, "
                             "review_token, sent_at) VALUES (:b, 'sms', 'sent', :t, now())"),
                     {"b": business, "t": "tok_abcdefgh123"})
    head = httpx.head(f"{base}/r/tok_abcdefgh123")
    assert head.status_code == 302
    assert _count(db, "SELECT count(*) FROM review_requests WHERE clicked_at IS NOT NULL") == 0
    response = httpx.get(f"{base}/r/tok_abcdefgh123")
    assert response.status_code == 302
    assert response.headers["location"] == "https://g.page/r/review-co/review"
    with db.connect() as conn:
        row = conn.execute(sa.text("SELECT status, clicked_at FROM review_requests")).one()
    assert row.status == "clicked" and row.clicked_at is not None
    first_click = row.clicked_at
    time.sleep(0.01)
    assert httpx.get(f"{base}/r/tok_abcdefgh123").status_code == 302
    assert _count(db, "SELECT count(*) FROM review_requests WHERE clicked_at = :c",
                  c=first_click) == 1
    assert httpx.get(f"{base}/r/tok_unknown_999").status_code == 404
    assert httpx.get(f"{base}/r/bad").status_code == 404


# --- the built-in webhook connectors through the same receiver ------------------------------

@pytest.fixture
def builtin_server(tmp_path: Path, database_url: str, db: Database
                   ) -> Iterator[tuple[str, HttpState]]:
    config = load_config(support.write_config(tmp_path / "b.toml", database_url, "http://x"),
                         environ={}).with_values(quickbooks__webhook_verifier_token="qbo-verifier",
                                                 jobber__client_secret="jobber-secret")
    state = HttpState(config=config, db=db, plugins=load_plugins(), metrics=DaemonMetrics(db),
                      scheduler_age=lambda: 0.0, daemon_id="test")
    srv = HttpServer(build_app(state), "127.0.0.1", 0)
    srv.start()
    yield f"http://127.0.0.1:{srv.port}", state
    srv.stop()


def test_quickbooks_cloudevents_delivery(builtin_server, db) -> None:
    from connectors.quickbooks.webhooks import SIGNATURE_HEADER

    base, _state = builtin_server
    business = add_business(db, name="QBO Co", owner_email="q@x.test", timezone="UTC")
    with db.begin() as conn:
        ensure_connection(conn, business, "quickbooks", "310687")
    body = json.dumps([{
        "specversion": "1.0", "id": "88cd52aa-33b6-4351-9aa4-47572edbd068",
        "source": "intuit.dsnBgbseACLLRZNxo2dfc4evmEJdxde58xeeYcZliOU=",
        "type": "qbo.payment.created.v1", "datacontenttype": "application/json",
        "time": "2025-09-10T21:31:25.179851517Z", "intuitentityid": "1234",
        "intuitaccountid": "310687", "data": {}}]).encode()
    headers = {"content-type": "application/cloudevents+json",
               SIGNATURE_HEADER: hmac_sha256_base64(body, "qbo-verifier")}
    first = httpx.post(f"{base}/webhooks/quickbooks", content=body, headers=headers)
    again = httpx.post(f"{base}/webhooks/quickbooks", content=body, headers=headers)
    assert (first.json(), again.json()) == ({"received": 1, "duplicates": 0},
                                            {"received": 0, "duplicates": 1})
    with db.connect() as conn:
        row = conn.execute(sa.text("SELECT dedupe_key, entity, entity_id, state "
                                   "FROM webhook_deliveries")).one()
    assert row.dedupe_key == "id:88cd52aa-33b6-4351-9aa4-47572edbd068"
    assert (row.entity, row.entity_id, row.state) == ("Payment", "1234", "pending")
    wrong = {**headers, SIGNATURE_HEADER: hmac_sha256_base64(body, "not-the-token")}
    assert httpx.post(f"{base}/webhooks/quickbooks", content=body, headers=wrong).status_code == 401


def test_jobber_delivery_and_app_disconnect(builtin_server, db, tmp_path) -> None:
    from connectors.jobber.webhooks import SIGNATURE_HEADER

    base, state = builtin_server
    business = add_business(db, name="Jobber Co", owner_email="j@x.test", timezone="UTC")
    with db.begin() as conn:
        connection = ensure_connection(conn, business, "jobber", "MQ==")

    def post(topic: str) -> httpx.Response:
        body = json.dumps({"data": {"webHookEvent": {
            "topic": topic, "appId": "app", "accountId": "MQ==", "itemId": "Mg==",
            "occurredAt": "2021-08-12T16:31:36-06:00"}}}).encode()
        return httpx.post(f"{base}/webhooks/jobber", content=body, headers={
            "content-type": "application/json",
            SIGNATURE_HEADER: hmac_sha256_base64(body, "jobber-secret")})

    assert post("CLIENT_CREATE").json() == {"received": 1, "duplicates": 0}
    assert post("CLIENT_CREATE").json() == {"received": 0, "duplicates": 1}  # topic+item+time
    form = (b"data%5BwebHookEvent%5D%5Btopic%5D=JOB_UPDATE&data%5BwebHookEvent%5D%5BaccountId%5D="
            b"MQ%3D%3D&data%5BwebHookEvent%5D%5BitemId%5D=Mw%3D%3D&data%5BwebHookEvent%5D"
            b"%5BoccuredAt%5D=2021-08-12T16%3A31%3A36-06%3A00")  # an app from before 2022-04-11
    old_app = httpx.post(f"{base}/webhooks/jobber", content=form, headers={
        "content-type": "application/x-www-form-urlencoded",
        SIGNATURE_HEADER: hmac_sha256_base64(form, "jobber-secret")})
    assert old_app.json() == {"received": 1, "duplicates": 0}
    xml = httpx.post(f"{base}/webhooks/jobber", content=b"<x/>", headers={
        "content-type": "application/xml", SIGNATURE_HEADER: sign(b"<x/>", "jobber-secret")})
    assert xml.status_code == 415
    assert post("APP_DISCONNECT").json() == {"received": 1, "duplicates": 0}
    worker = Worker(db, state.config, state.plugins, state.metrics, "test-owner")
    import threading

    worker.process_notices(connection, state.plugins.connector("jobber"), threading.Event())
    with db.connect() as conn:
        status = conn.execute(sa.text("SELECT status FROM connections WHERE id = :id"),
                              {"id": connection.id}).scalar()
    assert status == "disconnected"


JOBBER_SECRET = "jobber-client-secret-for-tests"


@pytest.fixture
def jobber_server(http_config: Config, db: Database) -> Iterator[str]:
    config = http_config.with_values(jobber__client_secret=JOBBER_SECRET,
                                     http__max_body_bytes=65536)
    with support.serving(config, db) as base:
        yield base


@pytest.mark.parametrize("item, app_id", [("Q2xpZW50\\u0000LzE=", '"app"'),
                                          ("Q2xpZW50LzE=", "Infinity"),
                                          ("Q2xpZW50LzI=\\u0000", "NaN"),
                                          ("Q2xpZW50LzM=", '"app\\u0000id"')])
def test_authentic_deliveries_with_nul_or_infinity_are_stored_cleaned(jobber_server: str,
                                                                      db: Database, item: str,
                                                                      app_id: str) -> None:
    """Jobber's body as sent, raw: json.loads accepts NUL escapes and Infinity/NaN, which
    PostgreSQL's text and jsonb refuse. Signed deliveries are stored, never 503 forever."""
    from signing import hmac_sha256_base64

    from connectors.jobber.webhooks import SIGNATURE_HEADER

    body = ('{"data":{"webHookEvent":{"topic":"CLIENT_UPDATE","appId":' + app_id
            + ',"accountId":"QWNjb3VudC8x","itemId":"' + item
            + '","occurredAt":"2026-11-25T12:00:00Z"}}}').encode()
    signature = hmac_sha256_base64(body, JOBBER_SECRET)
    responses = [httpx.post(f"{jobber_server}/webhooks/jobber", content=body, headers={
        "content-type": "application/json", SIGNATURE_HEADER: signature}) for _ in range(2)]
    assert [r.status_code for r in responses] == [200, 200], responses[0].text
    assert responses[0].json()["received"] == 1 and responses[1].json()["duplicates"] == 1
    with db.connect() as conn:
        row = conn.execute(sa.text("SELECT entity_id, notice FROM webhook_deliveries")).one()
    assert "\x00" not in row.entity_id and row.entity_id.startswith("Q2xpZW50")
    assert "\x00" not in json.dumps(row.notice)
