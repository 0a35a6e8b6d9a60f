"""The console in a real browser: served by `blippsync run`'s HTTP app (uvicorn on a
loopback port) over a seeded database; figures on the pages checked against SQL run
here, secrets looked for everywhere, screenshots saved as test artifacts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from console_seed import PLANTED_SECRETS, World, seed

from blippsync.config import load_config
from blippsync.console.auth import hash_password
from blippsync.database import Database
from blippsync.http import HttpServer, HttpState, build_app
from blippsync.metrics import DaemonMetrics

PASSWORD = "correct horse battery staple"


@pytest.fixture
def console(tmp_path: Path, database_url: str, db: Database) -> Iterator[tuple[str, World]]:
    world = seed(db)
    cfg = tmp_path / "config.toml"
    cfg.write_text(f'[database]\nurl = "{database_url}"\n[console]\nenabled = true\n'
                   f'password_hash = "{hash_password(PASSWORD, n=2**14)}"\n')
    config = load_config(cfg, environ={})
    state = HttpState(config=config, db=db, plugins=None, metrics=DaemonMetrics(db))
    server = HttpServer(build_app(state), "127.0.0.1", 0)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}", world
    finally:
        server.stop()


def _scalar(db: Database, sql: str, **params: Any) -> Any:
    with db.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar_one()


def _text(browser: Any, css: str) -> str:
    from selenium.webdriver.common.by import By

    return str(browser.find_element(By.CSS_SELECTOR, css).text)


def _all(browser: Any, css: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(browser.find_elements(By.CSS_SELECTOR, css))


def _submit_and_wait(browser: Any, css: str) -> None:
    """Click a submit button and wait for the page it leads to (the old one goes stale)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    old = browser.find_element(By.TAG_NAME, "html")
    browser.find_element(By.CSS_SELECTOR, css).click()
    WebDriverWait(browser, 30).until(expected_conditions.staleness_of(old))


def _full_page(browser: Any, screenshot: Any, name: str) -> None:
    """A screenshot of the whole page, not just the first screen of it."""
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, max(900, int(height) + 100))
    screenshot(name)
    browser.set_window_size(1280, 900)


def _no_secrets(browser: Any) -> None:
    source = browser.page_source
    for secret in PLANTED_SECRETS:
        assert secret not in source


def test_unauthenticated_visitor_gets_nothing(console, browser, screenshot) -> None:
    base, world = console
    browser.delete_all_cookies()
    for path in ("/console/", f"/console/b/{world.acme}", f"/console/c/{world.zoe}",
                 "/console/search?q=zoe"):
        raw = httpx.get(base + path, follow_redirects=False, timeout=30)
        assert raw.status_code == 303 and raw.headers["location"].startswith("/console/login")
        assert raw.content == b""
        browser.get(base + path)
        assert "/console/login" in browser.current_url
        for tenant_data in ("Acme", "Bright", "Zoe", "zoe@example.com", "quickbooks"):
            assert tenant_data not in browser.page_source
    screenshot("sign-in")
    # a wrong password is refused, still without data
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, "password").send_keys("not the password")
    _submit_and_wait(browser, "form button")
    assert "not right" in _text(browser, "#sign-in-error")
    assert "Acme" not in browser.page_source
    # a forged cookie gets nothing either
    forged = httpx.get(base + "/console/", cookies={"blippsync_console": "eyJzdWIiOiJ4In0.AAAA"},
                       follow_redirects=False)
    assert forged.status_code == 303


@pytest.mark.slow
def test_overview_business_customer_in_a_browser(console, browser, screenshot, db) -> None:
    from selenium.webdriver.common.by import By

    base, world = console
    browser.delete_all_cookies()
    browser.get(f"{base}/console/")
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    _submit_and_wait(browser, "form button")
    assert browser.current_url == f"{base}/console/"
    assert browser.get_cookie("blippsync_console")["httpOnly"] is True

    # --- overview: states and queues as the database has them
    expected_states = {
        "healthy": _scalar(db, "SELECT count(*) FROM connections WHERE status = 'connected' "
                               "AND consecutive_failures = 0"),
        "failing": _scalar(db, "SELECT count(*) FROM connections WHERE status = 'connected' "
                               "AND consecutive_failures > 0"),
        "token expired": _scalar(db, "SELECT count(*) FROM connections "
                                     "WHERE status = 'token_expired'"),
        "disconnected": _scalar(db, "SELECT count(*) FROM connections "
                                    "WHERE status = 'disconnected'"),
    }
    assert expected_states == {"healthy": 1, "failing": 1, "token expired": 1, "disconnected": 0}
    for state, count in expected_states.items():
        assert _text(browser, f'[data-state="{state}"]') == str(count)
    queues = {
        "events_to_route": "SELECT count(*) FROM trigger_events WHERE routing_state = 'pending'",
        "steps_due": "SELECT count(*) FROM customer_enrollments WHERE status = 'active' "
                     "AND next_step_at <= now()",
        "messages_unknown": "SELECT count(*) FROM review_requests WHERE status = 'unknown'",
    }
    for queue, sql in queues.items():
        assert _text(browser, f'[data-queue="{queue}"]') == str(_scalar(db, sql))
    assert _text(browser, '[data-queue="events_to_route"]') == "1"
    # needs a human: the expired Jobber token and the csv failing for three days, first
    items = _all(browser, "#needs-human .item")
    assert len(items) == 2
    attention = _text(browser, "#needs-human")
    assert "jobber" in attention and "blippsync connect jobber --business" in attention
    assert "refresh token revoked by the user" in attention
    assert "Failing for over a day" in attention and "Bright Cleaners" in attention
    first_rows = [r.text for r in _all(browser, "#connections tbody tr")]
    assert "needs a human" in first_rows[0] and "needs a human" in first_rows[1]
    assert "healthy" in first_rows[2]
    # charts: today's runs as drawn equal the database's
    runs_today = _scalar(db, "SELECT count(*) FROM sync_runs WHERE status = 'succeeded' AND "
                             "(started_at AT TIME ZONE 'UTC')::date = "
                             "(now() AT TIME ZONE 'UTC')::date")
    bars = [b for b in _all(browser, 'svg rect[data-series="succeeded"]')
            if b.get_attribute("data-day") == _scalar(
                db, "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')")]
    assert [b.get_attribute("data-value") for b in bars] == [str(runs_today)]
    # daemons running (not the stopped one) and the lease the running one holds
    daemons = [r.text for r in _all(browser, "#daemons tbody tr")]
    assert len(daemons) == _scalar(db, "SELECT count(*) FROM blippsync.daemons "
                                       "WHERE stopped_at IS NULL") == 1
    assert "host-a-4242-x1" in daemons[0]
    leases = _text(browser, "#leases")
    assert "Acme Plumbing · quickbooks" in leases and "host-a-4242-x1" in leases
    assert "task retention" in leases
    _no_secrets(browser)
    _full_page(browser, screenshot, "overview")

    # --- overview -> business
    _submit_and_wait(browser, "#businesses a")  # the business list's first: Acme Plumbing
    assert browser.current_url == f"{base}/console/b/{world.acme}"
    assert _text(browser, "h1") == "Acme Plumbing"
    active = _scalar(db, "SELECT count(*) FROM customer_enrollments "
                         "WHERE sequence_id = :s AND status = 'active'", s=world.sequence)
    assert active == 3
    assert _text(browser, f'[data-sequence="{world.sequence}"] .active-enrollments') == "3"
    runs = _scalar(db, "SELECT count(*) FROM sync_runs WHERE business_id = :b", b=world.acme)
    assert len(_all(browser, "#runs tbody tr")) == runs == 7
    assert len(_all(browser, "#messages tbody tr")) == _scalar(
        db, "SELECT count(*) FROM review_requests WHERE business_id = :b", b=world.acme)
    durations = [float(b.get_attribute("data-value"))
                 for b in _all(browser, ".durations svg rect[data-value]")]
    with db.connect() as conn:
        expected = [r[0] / 1000 for r in conn.execute(sa.text(
            "SELECT duration_ms FROM sync_runs WHERE business_id = :b ORDER BY started_at"),
            {"b": world.acme})]
    assert durations == expected
    assert "Bright" not in _text(browser, "main")
    _no_secrets(browser)
    _full_page(browser, screenshot, "business")

    # --- business -> search (scoped to this business) -> customer
    box = browser.find_element(By.CSS_SELECTOR, "input[type=search]")
    box.send_keys("zoe")
    _submit_and_wait(browser, "form.search button")
    names = [r.text for r in _all(browser, "#results tbody tr td:first-child")]
    assert names == ["Zoe Quinn"]  # Bright's Zoe Other is another business's customer
    _full_page(browser, screenshot, "search")
    _submit_and_wait(browser, "#results tbody a")
    assert browser.current_url == f"{base}/console/c/{world.zoe}"
    for table, section in (("trigger_events", "#events"), ("enrollment_decisions", "#decisions"),
                           ("review_requests", "#messages")):
        count = _scalar(db, f"SELECT count(*) FROM {table} WHERE customer_id = :c", c=world.zoe)
        assert len(_all(browser, f"{section} tbody tr")) == count > 0
    assert "already_active" in _text(browser, "#decisions")
    assert "next step" in _text(browser, "#story")
    _no_secrets(browser)
    _full_page(browser, screenshot, "customer")

    # --- every business's Zoes; by phone (typed the way people do), by external id
    browser.get(f"{base}/console/search?q=ZOE")
    assert [r.text for r in _all(browser, "#results tbody tr td:first-child")] == [
        "Zoe Other", "Zoe Quinn"]
    browser.get(f"{base}/console/search?q=(212)%20555-0103")
    assert [r.text for r in _all(browser, "#results tbody tr td:first-child")] == ["Xavier Dolan"]
    browser.get(f"{base}/console/search?q=tiersen")  # a word of the name, not its start
    assert [r.text for r in _all(browser, "#results tbody tr td:first-child")] == ["Yann Tiersen"]
    browser.get(f"{base}/console/search?q=QB-18")
    assert [r.text for r in _all(browser, "#results tbody tr td:first-child")] == ["Yann Tiersen"]

    # --- sign out: the pages are gone again
    browser.get(f"{base}/console/")
    _submit_and_wait(browser, ".who button")
    browser.get(f"{base}/console/b/{world.acme}")
    assert "/console/login" in browser.current_url
    assert re.search(r"Acme", browser.page_source) is None
