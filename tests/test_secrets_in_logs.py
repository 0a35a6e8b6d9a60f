"""Everything `blippsync run` logs at DEBUG during a full run holds no secret.

A real daemon process (python -m blippsync run, JSON logs on stderr, logging.level DEBUG)
syncs QuickBooks from the loopback fake (refreshing its tokens, more than once), receives
a signed QuickBooks webhook and fetches what it names, routes an event and sends a journey
email, answers a signed inbound SMS and an authenticated /healthz. Then every configured
secret, every token the fake issued and the database password are searched for in the
whole output, and in every file the run wrote.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
import sqlalchemy as sa
from fakes.intuit import CLIENT_ID, CLIENT_SECRET, fake_intuit
from fakes.qbo_data import customer
from fakes.qbo_kit import KEY_A, KEY_B, REALM, connected_business
from journey_support import apply, sequence
from signing import hmac_sha256_base64, twilio_sha1
from sqlalchemy.engine import make_url
from test_daemon_support import free_port

from blippsync.config import load_config
from blippsync.database import Database

SECRETS = {
    "quickbooks.client_secret": CLIENT_SECRET,
    "quickbooks.webhook_verifier_token": "qbo-verifier-s3cret-5a7e",
    "jobber.client_secret": "jobber-client-s3cret-77e1",
    "smtp.password": "smtp-pass-s3cret-0c1d",
    "twilio.auth_token": "twilio-auth-s3cret-9f3b",
    "http.health_token": "health-s3cret-4d2a",
}
DB_PASSWORD = "db-pass-s3cret-1b9f"  # trust auth ignores it; a leak would still show it


def _wait(predicate: Callable[[], bool], what: str, timeout: float = 60.0,
          diagnose: Callable[[], str] = lambda: "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what} {diagnose()}")
        time.sleep(0.2)


def _journey_state(db: Database) -> str:
    """Where the journey stands, for a timeout's message."""
    with db.connect() as conn:
        return str({table: conn.execute(sa.text(query)).all() for table, query in (
            ("events", "SELECT routing_state, routing_error, event_type FROM trigger_events"),
            ("decisions", "SELECT decision, reason FROM enrollment_decisions"),
            ("enrollments", "SELECT status, status_reason, next_step_at "
                            "FROM customer_enrollments"),
            ("requests", "SELECT status, last_error FROM review_requests"))})


def _scalar(db: Database, sql: str) -> int:
    with db.connect() as conn:
        return int(conn.execute(sa.text(sql)).scalar() or 0)


@pytest.mark.slow
def test_a_full_run_logs_no_secret_at_debug(tmp_path: Path, database_url: str,
                                            db: Database) -> None:
    port = free_port()
    url_with_password = make_url(database_url).set(password=DB_PASSWORD).render_as_string(
        hide_password=False)
    with fake_intuit() as (base, state):
        state.expires_in = 60  # inside vault.refresh_margin_seconds: every pass refreshes
        for i in range(1, 6):
            state.add("Customer", customer(i, minutes=i))
        config_path = tmp_path / "config.toml"
        lines = [
            "[database]", f'url = "{url_with_password}"', "auto_migrate = false",
            "[logging]", 'level = "DEBUG"', 'format = "json"',
            "[encryption]", f'keys = ["{KEY_A}", "{KEY_B}"]',
            "[quickbooks]", f'client_id = "{CLIENT_ID}"',
            f'client_secret = "{SECRETS["quickbooks.client_secret"]}"',
            f'webhook_verifier_token = "{SECRETS["quickbooks.webhook_verifier_token"]}"',
            f'api_base_url = "{base}"', f'token_url = "{base}/oauth2/v1/tokens/bearer"',
            "use_cdc = false",
            "[jobber]", f'client_secret = "{SECRETS["jobber.client_secret"]}"',
            "[smtp]", 'username = "mailer"', f'password = "{SECRETS["smtp.password"]}"',
            "[twilio]", 'account_sid = "AC00000000000000000000000000000000"',
            f'auth_token = "{SECRETS["twilio.auth_token"]}"',
            "[channels]", f'outbox_dir = "{tmp_path / "outbox"}"',
            "[daemon]", "tick_seconds = 0.2", "journey_interval_seconds = 0.5",
            "token_refresh_interval_seconds = 1", "token_refresh_ahead_seconds = 7200",
            "sync_interval_seconds = 2", "shutdown_grace_seconds = 5",
            "[http]", 'host = "127.0.0.1"', f"port = {port}",
            f'health_token = "{SECRETS["http.health_token"]}"',
        ]
        config_path.write_text("\n".join(lines) + "\n")
        config = load_config(config_path, environ={})
        business, connection = connected_business(db, config, state.refresh_token)
        apply(db, business, sequence(trigger_source="quickbooks",
                                     trigger_event_type="customer_created",
                                     settings={"email_hours": "00:00-24:00"},
                                     steps=[{"type": "email", "subject": "Thanks {first_name}",
                                             "body": "From {business}"}]))
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLIPPSYNC_")}
        stderr = tmp_path / "daemon.log"
        with stderr.open("wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "blippsync", "--config",
                                     str(config_path), "run"], env=env, stderr=err,
                                    stdout=subprocess.DEVNULL)
        try:
            _wait(lambda: _scalar(db, "SELECT count(*) FROM sync_runs "
                                      "WHERE status = 'succeeded'") >= 1, "a sync")
            with db.begin() as conn:  # a fresh event for synced customer 2: a journey runs
                conn.execute(sa.text(
                    "INSERT INTO trigger_events (business_id, source, event_type, customer_id, "
                    "occurred_at, dedupe_key) SELECT business_id, 'quickbooks', "
                    "'customer_created', id, now(), 'log-scan-' || id FROM customers "
                    "WHERE business_id = :b AND external_id = '2'"), {"b": business})
            body = json.dumps([{"specversion": "1.0", "id": uuid.uuid4().hex,
                                "type": "qbo.customer.updated.v1", "source": "intuit.qbo",
                                "time": "2026-11-20T12:00:00Z", "intuitaccountid": REALM,
                                "intuitentityid": "3", "datacontenttype": "application/json",
                                "data": {}}]).encode()
            sig = hmac_sha256_base64(body, SECRETS["quickbooks.webhook_verifier_token"])
            _wait(lambda: _port_open(port), "the HTTP port")
            hook = httpx.post(f"http://127.0.0.1:{port}/webhooks/quickbooks", content=body,
                              headers={"content-type": "application/cloudevents+json",
                                       "intuit-signature": sig})
            assert hook.status_code == 200, hook.text
            # customer 1 texts STOP (customer 2 is the one the journey writes to)
            fields = {"MessageSid": "SM1", "From": "+14155550001", "Body": "STOP"}
            sms = httpx.post(f"http://127.0.0.1:{port}/sms/twilio", content=urlencode(fields),
                             headers={"content-type": "application/x-www-form-urlencoded",
                                      "x-twilio-signature": twilio_sha1(
                                          f"http://127.0.0.1:{port}/sms/twilio",
                                          list(fields.items()), SECRETS["twilio.auth_token"])})
            assert sms.status_code == 200
            health = httpx.get(f"http://127.0.0.1:{port}/healthz", headers={
                "Authorization": f"Bearer {SECRETS['http.health_token']}"})
            assert "database" in health.json()
            _wait(lambda: _scalar(db, "SELECT count(*) FROM review_requests "
                                      "WHERE status = 'sent'") >= 1, "a journey email",
                  diagnose=lambda: _journey_state(db))
            _wait(lambda: _scalar(db, "SELECT count(*) FROM webhook_deliveries "
                                      "WHERE state = 'processed'") >= 1, "the webhook fetch")
            _wait(lambda: state.refreshes >= 3, "repeated token refreshes")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
        issued = {state.refresh_token, state.previous_refresh_token, "RT1-initial-0000000000",
                  *state.access_tokens}
    secrets = {*SECRETS.values(), DB_PASSWORD, KEY_A, KEY_B, *(t for t in issued if t)}
    output = stderr.read_text()
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    debug = sum(1 for r in records if str(r.get("level")).lower() == "debug")
    assert debug > 10, "DEBUG was not on"
    written = "\n".join(p.read_text(errors="replace") for p in tmp_path.rglob("*")
                        if p.is_file() and p.name not in ("config.toml", "daemon.log"))
    found = sorted(s for s in secrets if s in output or s in written)
    print(f"\nlog scan: {len(output.splitlines())} log lines ({len(records)} records), "
          f"{len(secrets)} secrets searched, {len(found)} found")
    assert found == []


def _port_open(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
        return True
    except httpx.HTTPError:
        return False
