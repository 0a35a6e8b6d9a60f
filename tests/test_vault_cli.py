"""`connect quickbooks`, `keys generate|rotate`, `disconnect quickbooks` through the CLI, and
the loopback authorization-code flow."""

from __future__ import annotations

import threading
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import sqlalchemy as sa
from click.testing import CliRunner
from fakes.intuit import fake_intuit
from fakes.qbo_kit import KEY_A, KEY_B, qbo_config

from blippsync.businesses import add_business
from blippsync.cli import cli
from blippsync.database import Database
from blippsync.errors import AuthError
from blippsync.vault.loopback import authorize
from connectors.quickbooks import QuickBooksConnector


def test_connect_rotate_disconnect(tmp_path: Path, database_url: str, db: Database) -> None:
    business = add_business(db, name="B", owner_email="o@b.test", timezone="UTC")
    runner = CliRunner()
    with fake_intuit() as (url, state):
        config = qbo_config(tmp_path, database_url, url)
        args = ["--config", str(config.path)]
        result = runner.invoke(cli, [*args, "connect", "quickbooks", "--business", str(business),
                                     "--realm-id", "4620816365", "--refresh-token-stdin"],
                               input=state.refresh_token + "\n")
        assert result.exit_code == 0, result.output
        assert "connected business" in result.output and state.refreshes == 1
        assert state.refresh_token not in result.output

        key = runner.invoke(cli, ["keys", "generate"]).output.strip()
        assert len(key) == 43
        rotated = tmp_path / "rotated.toml"
        rotated.write_text(config.path.read_text().replace(f'keys = ["{KEY_A}"]',
                                                           f'keys = ["{KEY_B}", "{KEY_A}"]'))
        result = runner.invoke(cli, ["--config", str(rotated), "keys", "rotate"])
        assert result.exit_code == 0, result.output
        assert "re-encrypted 3 value(s)" in result.output

        result = runner.invoke(cli, ["--config", str(rotated), "disconnect", "quickbooks",
                                     "--business", str(business)])
        assert result.exit_code == 0, result.output
        assert "token revoked" in result.output and len(state.revoked) == 1
    with db.connect() as conn:
        status = conn.execute(sa.text("SELECT connection_status FROM "
                                      "public.integrations_quickbooks")).scalar_one()
    assert status == "disconnected"


def test_loopback_flow_checks_state() -> None:
    spec = QuickBooksConnector().oauth_spec({"client_id": "cid", "client_secret": "secret-xyz"})

    def browser(url: str, tamper: bool) -> None:
        params = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        assert params["scope"] == "com.intuit.quickbooks.accounting"
        state = "forged" if tamper else params["state"]
        answer = f"{params['redirect_uri']}?code=auth-code-1&state={state}&realmId=4620816365"
        threading.Thread(target=httpx.get, args=(answer,), daemon=True).start()

    auth = authorize(spec, show=lambda url: browser(url, tamper=False), timeout_seconds=10)
    assert auth.code == "auth-code-1" and auth.params["realmId"] == "4620816365"
    try:
        authorize(spec, show=lambda url: browser(url, tamper=True), timeout_seconds=1)
    except AuthError as exc:
        assert "no answer" in str(exc)  # a forged state is refused and never accepted
    else:
        raise AssertionError("a forged state was accepted")


