"""The daemon's HTTP surface over real loopback HTTP: webhooks, review links, metrics."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
import test_daemon_support as support
from test_daemon_support import FakeRemote, sign, webhook_body

from blippsync.businesses import add_business
from blippsync.config import Config, load_config
from blippsync.connections import ensure_connection
from blippsync.daemon.metrics import DaemonMetrics
from blippsync.daemon.worker import Worker
from blippsync.database import Database
from blippsync.http import HttpServer, HttpState, build_app
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
