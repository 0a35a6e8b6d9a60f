"""`blippsync connect jobber` and `blippsync disconnect jobber` against the loopback fake."""

from __future__ import annotations

import base64
from pathlib import Path

import sqlalchemy as sa
from click.testing import CliRunner
from fakes.jobber_fake import ACCOUNT_ID, JobberFake

from blippsync.businesses import add_business
from blippsync.cli import cli
from blippsync.database import Database

KEY = "hYm5G0r0q2bU0m7x3q4m9mQy6Yk1bq7cG1mF3w8Zs2A"  # test-only key


def env(database_url: str, fake: JobberFake) -> dict[str, str]:
    return {"BLIPPSYNC_DATABASE_URL": database_url, "BLIPPSYNC_ENCRYPTION_KEYS": KEY,
            "BLIPPSYNC_JOBBER_CLIENT_ID": fake.client_id,
            "BLIPPSYNC_JOBBER_CLIENT_SECRET": fake.client_secret,
            "BLIPPSYNC_JOBBER_GRAPHQL_URL": fake.graphql_url,
            "BLIPPSYNC_JOBBER_TOKEN_URL": fake.token_url, "BLIPPSYNC_LOGGING_FORMAT": "text"}


def test_connect_with_stdin_token_then_disconnect(tmp_path: Path, database_url: str,
                                                  db: Database) -> None:
    business = add_business(db, name="Green Lawns", owner_email="o@greenlawns.test",
                            timezone="America/Chicago")
    runner = CliRunner()
    (tmp_path / "none.toml").write_text("")
    with JobberFake() as fake:
        handed_over = fake.refresh_token
        result = runner.invoke(cli, ["--config", str(tmp_path / "none.toml"), "connect", "jobber",
                                     "--business", str(business), "--refresh-token-stdin"],
                               input=handed_over + "\n", env=env(database_url, fake))
        assert result.exit_code == 0, result.output
        assert ACCOUNT_ID in result.output and "Fake Lawn Care" in result.output
        assert handed_over not in result.output
        assert fake.refreshes == 1  # the handed-over token was used once and replaced
        with db.connect() as conn:
            row = conn.execute(sa.text(
                "SELECT account_id, account_name, refresh_token, connection_status "
                "FROM public.integrations_jobber WHERE business_id = :b"), {"b": business}).one()
        assert row.account_id == ACCOUNT_ID and row.account_name == "Fake Lawn Care"
        assert row.refresh_token.startswith("bsv2:") and row.connection_status == "connected"

        result = runner.invoke(cli, ["--config", str(tmp_path / "none.toml"), "disconnect",
                                     "jobber", "--business", str(business)],
                               env=env(database_url, fake))
        assert result.exit_code == 0, result.output
        assert "app removed" in result.output and fake.disconnected
    with db.connect() as conn:
        row = conn.execute(sa.text(
            "SELECT refresh_token, connection_status FROM public.integrations_jobber "
            "WHERE business_id = :b"), {"b": business}).one()
    assert row.refresh_token is None and row.connection_status == "disconnected"


def test_account_id_derives_from_the_jwt() -> None:
    from fakes.jobber_fake import make_jwt

    from connectors.jobber.commands import account_id_from_token

    token = make_jwt({"account_id": 2486934, "exp": 1})
    assert account_id_from_token(token) == ACCOUNT_ID
    assert base64.b64decode(ACCOUNT_ID) == b"gid://Jobber/Account/2486934"
