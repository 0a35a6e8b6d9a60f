"""The console without a browser: off by default, sign-in rules, cookies, proxy trust,
redirects, the standalone command, and the searches' use of indexes."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from console_seed import seed

from blippsync.cli import cli
from blippsync.config import Config, load_config
from blippsync.console.auth import Access, hash_password, verify_password
from blippsync.console.queries import SEARCH_SQL, search_parameters
from blippsync.database import Database
from blippsync.errors import ConfigError
from blippsync.http import HttpServer, HttpState, build_app
from blippsync.metrics import DaemonMetrics

PASSWORD = "a long operator password"


def _config(tmp_path: Path, database_url: str, **console: Any) -> Config:
    lines = [f'[database]\nurl = "{database_url}"', "[console]"]
    lines += [f"{k} = {v!r}".replace("'", '"') if not isinstance(v, bool)
              else f"{k} = {str(v).lower()}" for k, v in console.items()]
    (tmp_path / "config.toml").write_text("\n".join(lines) + "\n")
    return load_config(tmp_path / "config.toml", environ={})


def _serve(config: Config, db: Database) -> Iterator[str]:
    server = HttpServer(build_app(HttpState(config=config, db=db, plugins=None,
                                            metrics=DaemonMetrics(db))), "127.0.0.1", 0)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


@pytest.fixture
def password_server(tmp_path, database_url, db) -> Iterator[str]:
    seed(db)
    config = _config(tmp_path, database_url, enabled=True,
                     password_hash=hash_password(PASSWORD, n=2**14))
    yield from _serve(config, db)


def test_console_is_off_unless_enabled(tmp_path, database_url, db) -> None:
    for base in _serve(_config(tmp_path, database_url), db):
        assert httpx.get(f"{base}/console/").status_code == 404
        assert httpx.get(f"{base}/console/login").status_code == 404


def test_enabled_console_needs_a_sign_in_method_and_a_sane_path(tmp_path, database_url,
                                                                db) -> None:
    with pytest.raises(ConfigError, match="no sign-in is configured"):
        build_app(HttpState(config=_config(tmp_path, database_url, enabled=True), db=db,
                            plugins=None, metrics=DaemonMetrics(db)))
    with pytest.raises(ConfigError, match="not an scrypt hash"):
        Access.from_config(_config(tmp_path, database_url, password_hash="hunter2"))
    with pytest.raises(ConfigError, match="console.path"):
        build_app(HttpState(config=_config(tmp_path, database_url, enabled=True, path="/",
                                           proxy_header="X-User"),
                            db=db, plugins=None, metrics=DaemonMetrics(db)))


def test_password_hash_and_session_cookie(tmp_path, database_url) -> None:
    stored = hash_password(PASSWORD, n=2**14)
    assert stored.startswith("scrypt$16384$8$1$") and PASSWORD not in stored
    assert verify_password(PASSWORD, stored) and not verify_password(PASSWORD + "!", stored)
    access = Access.from_config(_config(tmp_path, database_url, password_hash=stored,
                                        session_secret="k" * 32))
    cookie = access.issue("operator", now=1000.0)
    assert access.operator(cookie, now=1001.0) == "operator"
    assert access.operator(cookie, now=1000.0 + access.session_seconds + 1) is None  # expired
    body, signature = cookie.split(".")
    assert access.operator(body + "." + signature[:-2] + "AA", now=1001.0) is None
    other = Access.from_config(_config(tmp_path, database_url, password_hash=stored,
                                       session_secret="another key"))
    assert other.operator(cookie, now=1001.0) is None  # signed with another key


def test_sign_in_sets_a_strict_cookie_and_never_redirects_off_site(password_server) -> None:
    base = password_server
    bad = httpx.post(f"{base}/console/login", data={"password": "wrong", "next": "/console/"})
    assert bad.status_code == 401 and "set-cookie" not in bad.headers
    for target, lands in (("//evil.example/", "/console/"), ("https://evil.example/",
                                                            "/console/"),
                          ("/console/search?q=zoe", "/console/search?q=zoe")):
        ok = httpx.post(f"{base}/console/login", data={"password": PASSWORD, "next": target})
        assert ok.status_code == 303 and ok.headers["location"] == lands
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/console/" in cookie
    assert "secure" not in cookie  # plain http on loopback
    page = httpx.get(f"{base}/console/", cookies={"blippsync_console": ok.cookies[
        "blippsync_console"]})
    assert page.status_code == 200 and "Acme Plumbing" in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    # behind a TLS-terminating proxy on loopback, the cookie is Secure
    tls = httpx.post(f"{base}/console/login", data={"password": PASSWORD},
                     headers={"X-Forwarded-Proto": "https"})
    assert "secure" in tls.headers["set-cookie"].lower()
    assert httpx.get(f"{base}/console/b/not-an-id", cookies=page.cookies or {
        "blippsync_console": ok.cookies["blippsync_console"]}).status_code == 404


@pytest.mark.parametrize("trusted, signed_in", [("127.0.0.1", True), ("10.0.0.0/8", False)])
def test_proxy_header_is_believed_only_from_trusted_proxies(tmp_path, database_url, db,
                                                            trusted, signed_in) -> None:
    seed(db)
    config = _config(tmp_path, database_url, enabled=True, proxy_header="X-Forwarded-User",
                     path="/ops/console").with_values(console__trusted_proxies=[trusted])
    for base in _serve(config, db):
        # a proxy also says who the visitor is (X-Forwarded-For): still the proxy that vouches
        for extra in ({}, {"X-Forwarded-For": "203.0.113.9"}):
            page = httpx.get(f"{base}/ops/console/",
                             headers={"X-Forwarded-User": "ada@ops", **extra})
            if signed_in:
                assert page.status_code == 200 and "ada@ops" in page.text
            else:
                assert page.status_code == 303 and not page.content
        login = httpx.get(f"{base}/ops/console/login")
        assert "X-Forwarded-User" in login.text.replace("x-forwarded-user", "X-Forwarded-User")
        assert 'type="password"' not in login.text  # no password configured: no form


def test_hash_password_command() -> None:
    ran = CliRunner().invoke(cli, ["console", "hash-password", "--stdin"],
                             input=PASSWORD + "\n")
    assert ran.exit_code == 0, ran.output
    assert verify_password(PASSWORD, ran.output.strip())
    short = CliRunner().invoke(cli, ["console", "hash-password", "--stdin"], input="short\n")
    assert short.exit_code == 2 and "at least 12 characters" in short.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_console_command_serves_the_console_alone(cli_env, db) -> None:
    port = _free_port()
    env = {**cli_env, "BLIPPSYNC_CONSOLE_PASSWORD_HASH": hash_password(PASSWORD, n=2**14)}
    proc = subprocess.Popen([sys.executable, "-m", "blippsync", "console", "--port", str(port)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                home = httpx.get(f"http://127.0.0.1:{port}/")
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.2)
        assert home.status_code == 307 and home.headers["location"] == "/console/"
        assert httpx.get(f"http://127.0.0.1:{port}/console/").status_code == 303
        assert httpx.get(f"http://127.0.0.1:{port}/webhooks/quickbooks").status_code == 404
    finally:
        proc.terminate()
        proc.wait(10)
    without = subprocess.run([sys.executable, "-m", "blippsync", "console", "--port",
                              str(port)], env=cli_env, capture_output=True, text=True,
                             timeout=60)
    assert without.returncode == 1 and "no sign-in is configured" in without.stderr
    assert "Traceback" not in without.stderr


SEARCHES = [("zoe", "customers_lower_name_prefix_idx"),
            ("quinn", "customers_last_name_prefix_idx"),
            ("quin", "customers_last_name_prefix_idx"),
            ("zoe@exa", "customers_business_id_email_key"),  # the unique key (0186)
            ("(212) 555-0101", "customers_phone_idx"),
            ("QB-17", "customers_business_source_external_id_key"),
            ("QB-17", "customer_identities_external_id_idx")]


def test_searches_are_served_by_indexes_and_never_scan(db) -> None:
    """With enough customers for the planner to care (20,000, analyzed), every branch of
    the search is an index scan: none may fall back to reading the table under its LIMIT."""
    seed(db)
    with db.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO customers (business_id, name, email, phone, source, external_id) "
            "SELECT b.id, 'Person ' || g || ' Name' || g % 97, 'p' || g || '@example.com', "
            "'+1212' || (3000000 + g), 'csv', 'X-' || g FROM generate_series(1, 20000) g, "
            "(SELECT id FROM businesses ORDER BY name LIMIT 1) b"))
        conn.execute(sa.text(
            "INSERT INTO customer_identities (business_id, source, external_id, customer_id) "
            "SELECT business_id, 'manual', 'M-' || external_id, id FROM customers "
            "WHERE external_id LIKE 'X-%'"))
        conn.execute(sa.text("ANALYZE customers"))
        conn.execute(sa.text("ANALYZE customer_identities"))
    for typed, index in SEARCHES + [("nobody-at-all", "customers_last_name_prefix_idx")]:
        with db.connect() as conn:
            plan = "\n".join(r[0] for r in conn.execute(
                sa.text("EXPLAIN " + str(SEARCH_SQL.text)), search_parameters(typed, None)))
        assert index in plan, (typed, plan)
        assert "Seq Scan" not in plan, (typed, plan)


def test_run_refuses_to_start_with_a_console_nobody_can_sign_in_to(cli_env) -> None:
    ran = subprocess.run([sys.executable, "-m", "blippsync", "run", "--port", "0"],
                         env={**cli_env, "BLIPPSYNC_CONSOLE_ENABLED": "true"},
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 1 and "no sign-in is configured" in ran.stderr
    assert "Traceback" not in ran.stderr


def test_a_database_outage_is_a_page_not_a_traceback(tmp_path, database_url, db) -> None:
    config = _config(tmp_path, database_url, enabled=True,
                     password_hash=hash_password(PASSWORD, n=2**14))
    down = Database("postgresql://blippsync:hunter2secret@127.0.0.1:9/nowhere", pool_size=1)
    for base in _serve(config, down):
        with httpx.Client() as client:
            assert client.post(f"{base}/console/login",
                               data={"password": PASSWORD}).status_code == 303
            page = client.get(f"{base}/console/")
        assert page.status_code == 503 and "cannot be reached" in page.text
        assert "hunter2secret" not in page.text and "Traceback" not in page.text
    down.dispose()
