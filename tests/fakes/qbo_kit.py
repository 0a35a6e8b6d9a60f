"""Setting up a QuickBooks connection against the loopback fake, for tests and the bench."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from blippsync.businesses import add_business
from blippsync.config import Config, load_config
from blippsync.connections import Connection
from blippsync.database import Database
from blippsync.vault import store_tokens
from fakes.intuit import CLIENT_ID, CLIENT_SECRET

KEY_A = "hYm5G0r0q2bU0m7x3q4m9mQy6Yk1bq7cG1mF3w8Zs2A"  # test-only keys
KEY_B = "Vb2k8m1Qz7c0R4t5y6u7i8o9p0a1s2d3f4g5h6j7k8E"
REALM = "9341452732952867"


def qbo_config(tmp_path: Path, database_url: str, base_url: str, keys: str = KEY_A,
               **extra: Any) -> Config:
    lines = ["[database]", f'url = "{database_url}"', "pool_size = 3",
             "[encryption]", "keys = [" + ", ".join(f'"{k}"' for k in keys.split(",")) + "]",
             "[vault]", "refresh_attempts = 3",
             "[quickbooks]", f'client_id = "{CLIENT_ID}"', f'client_secret = "{CLIENT_SECRET}"',
             f'api_base_url = "{base_url}"', f'token_url = "{base_url}/oauth2/v1/tokens/bearer"',
             f'revoke_url = "{base_url}/v2/oauth2/tokens/revoke"']
    lines += [f"{k} = {v!r}".replace("'", '"') if isinstance(v, str) else f"{k} = {str(v).lower()}"
              for k, v in extra.items()]
    path = tmp_path / "config.toml"
    path.write_text("\n".join(lines) + "\n")
    return load_config(path, environ={})


def connected_business(db: Database, config: Config, refresh_token: str,
                       realm: str = REALM) -> tuple[uuid.UUID, Connection]:
    business = add_business(db, name="Cool Cars", owner_email="owner@coolcars.test",
                            timezone="America/Los_Angeles")
    connection = store_tokens(db, config, business, "quickbooks", realm, refresh_token)
    return business, connection
