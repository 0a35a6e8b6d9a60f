"""`blippsync stripe link`: the plugin's own command, added through register_commands."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from blippsync.cli import cli
from blippsync.database import Database


def _business(db: Database, name: str, customer: str | None) -> str:
    with db.begin() as conn:
        return str(conn.execute(sa.text(
            "INSERT INTO businesses (name, created_by, stripe_customer_id) "
            "VALUES (:n, 'o@x.test', :c) RETURNING id"), {"n": name, "c": customer}).scalar_one())


def test_link_one_business_or_all(database_url: str, db: Database,
                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = {"BLIPPSYNC_DATABASE_URL": database_url, "BLIPPSYNC_CONFIG": ""}
    one = _business(db, "One", None)
    two = _business(db, "Two", "cus_Two")
    _business(db, "Three", None)

    def run(*args: str) -> object:
        return CliRunner().invoke(cli, list(args), env=env, obj={})  # plugins join on look-up

    linked = run("stripe", "link", "--business", one, "--customer", "cus_One")
    assert linked.exit_code == 0, linked.output
    assert run("stripe", "link", "--all").exit_code == 0
    with db.connect() as conn:
        pairs = conn.execute(sa.text(
            "SELECT b.name, c.account_id FROM connections c JOIN businesses b "
            "ON b.id = c.business_id WHERE c.connector = 'stripe' ORDER BY b.name")).all()
    assert [tuple(p) for p in pairs] == [("One", "cus_One"), ("Two", "cus_Two")]
    refused = run("stripe", "link", "--business", two, "--customer", "acct_1")
    assert refused.exit_code == 1 and "not a Stripe customer id" in refused.output
    assert run("stripe", "link").exit_code == 1
