"""A plugin connector with an API key, installed through an entry point, end to end: the key
stored encrypted through the vault (`credentials set`) or configured under [plugins.keyed]
reaches the connector as ctx.credentials in `run-once` and in the daemon, and never the output.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa
from journey_support import make_business
from test_daemon_support import free_port

from blippsync.connections import ensure_connection
from blippsync.database import Database
from blippsync.vault import generate_key

REPO = Path(__file__).resolve().parent.parent
KEYED_PLUGIN_DIR = REPO / "tests" / "plugins" / "keyed"
API_KEY = "keyed-live-7f3a9c2e5b1d"


class FakeKeyedApi:
    """GET /customers answers two customers to the right X-Api-Key, 401 to anything else."""

    def __init__(self) -> None:
        self.keys_seen: list[str | None] = []
        completed = (datetime.now(UTC) - timedelta(hours=2)).isoformat()
        rows = [{"id": "k1", "name": "Kay One", "email": "kay@keyed.test",
                 "completed_at": completed},
                {"id": "k2", "name": "Lee Two", "email": "lee@keyed.test",
                 "completed_at": completed}]
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                key = self.headers.get("X-Api-Key")
                api.keys_seen.append(key)
                ok = self.path == "/customers" and key == API_KEY
                body = json.dumps(rows if ok else {"error": "bad key"}).encode()
                self.send_response(200 if ok else 401)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeKeyedApi:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api() -> Iterator[FakeKeyedApi]:
    with FakeKeyedApi() as fake:
        yield fake


@pytest.fixture
def keyed_env(cli_env: dict[str, str], tmp_path: Path, api: FakeKeyedApi) -> dict[str, str]:
    """The CLI's environment with the keyed plugin installed (its dist-info on the path)."""
    config = tmp_path / "config.toml"
    config.write_text(f'[plugins.keyed]\nbase_url = "{api.url}"\n')
    return {**cli_env, "BLIPPSYNC_CONFIG": str(config),
            "BLIPPSYNC_ENCRYPTION_KEYS": generate_key(),
            "PYTHONPATH": os.pathsep.join([str(KEYED_PLUGIN_DIR), *sys.path])}


def _cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "blippsync", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


def _customers(db: Database) -> list[str]:
    with db.connect() as conn:
        return list(conn.execute(sa.text(
            "SELECT email FROM customers WHERE source = 'keyed' ORDER BY email")).scalars())


def test_run_once_hands_a_vault_stored_key_to_the_plugin(db: Database, api: FakeKeyedApi,
                                                         keyed_env: dict[str, str]) -> None:
    business = make_business(db)
    stored = _cli(keyed_env, "credentials", "set", "keyed", "api_key", "--business",
                  str(business), stdin=API_KEY + "\n")
    assert stored.returncode == 0, stored.stderr
    with db.connect() as conn:
        sealed = conn.execute(sa.text("SELECT credentials FROM connections "
                                      "WHERE connector = 'keyed'")).scalar_one()
    assert sealed.startswith("bsv2:") and API_KEY not in sealed  # encrypted at rest

    out = _cli(keyed_env, "run-once", "--json")
    assert out.returncode == 0, out.stderr
    [sync] = json.loads(out.stdout)["syncs"]
    assert (sync["connector"], sync["error"], sync["created"]) == ("keyed", None, 2)
    assert api.keys_seen == [API_KEY]
    assert _customers(db) == ["kay@keyed.test", "lee@keyed.test"]
    assert API_KEY not in out.stdout + out.stderr + stored.stdout + stored.stderr


def test_a_missing_key_says_where_to_put_it(db: Database, api: FakeKeyedApi,
                                            keyed_env: dict[str, str]) -> None:
    business = make_business(db)
    with db.begin() as conn:
        ensure_connection(conn, business, "keyed")
    out = _cli(keyed_env, "run-once", "--json")  # neither stored nor configured
    assert out.returncode == 1
    [sync] = json.loads(out.stdout)["syncs"]
    assert "has no api_key credential" in sync["error"]
    assert f"blippsync credentials set keyed api_key --business {business}" in sync["error"]
    assert api.keys_seen == []  # the connector never ran
    refused = _cli(keyed_env, "credentials", "set", "keyed", "token", "--business",
                   str(business), stdin="x\n")
    assert refused.returncode == 1
    assert "declares no credential 'token' (it declares: api_key)" in refused.stderr


def test_the_daemon_hands_a_configured_key_to_the_plugin(db: Database, api: FakeKeyedApi,
                                                         keyed_env: dict[str, str],
                                                         tmp_path: Path) -> None:
    business = make_business(db)
    with db.begin() as conn:
        ensure_connection(conn, business, "keyed")
    config = Path(keyed_env["BLIPPSYNC_CONFIG"])  # the key by indirection, as for any secret
    config.write_text(config.read_text() + 'api_key = { "$env" = "KEYED_API_KEY" }\n')
    env = {**keyed_env, "KEYED_API_KEY": API_KEY, "BLIPPSYNC_DAEMON_TICK_SECONDS": "0.2"}
    log = tmp_path / "daemon.log"
    with log.open("wb") as log_file:
        daemon = subprocess.Popen([sys.executable, "-m", "blippsync", "run", "--port",
                                   str(free_port()), "--host", "127.0.0.1"],
                                  env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while len(_customers(db)) < 2:
            assert daemon.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.1)
    finally:
        daemon.send_signal(signal.SIGTERM)
        status = daemon.wait(30)
    assert status == 0, log.read_text()[-3000:]
    assert _customers(db) == ["kay@keyed.test", "lee@keyed.test"]
    assert api.keys_seen[0] == API_KEY
    assert API_KEY not in log.read_text()
