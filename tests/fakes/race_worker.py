"""One process of the refresh race: N rounds of "use the token, get a 401, refresh", then
a forced refresh (a real rotation every round, whoever holds the lock).

Run as `python race_worker.py CONFIG CONNECTION_ID ROUNDS GO_FILE`; prints one JSON line.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid

import httpx

from blippsync.config import load_config
from blippsync.connections import get_connection
from blippsync.database import Database
from blippsync.errors import BlippsyncError
from blippsync.vault import token_provider
from connectors.quickbooks import QuickBooksConnector


def main() -> None:
    config_path, connection_id, rounds, go_file = sys.argv[1:5]
    config = load_config(config_path, environ={})
    db = Database(config["database.url"], pool_size=2)
    with db.connect() as conn:
        connection = get_connection(conn, uuid.UUID(connection_id))
    errors: list[str] = []
    refreshed = 0
    with httpx.Client(timeout=10) as http:
        provider = token_provider(db, config, connection, QuickBooksConnector(), http)
        while not os.path.exists(go_file):  # start together
            time.sleep(0.005)
        for _ in range(int(rounds)):
            try:
                token = provider.access_token()
                provider.refresh_after_rejection(token)  # may pick up another's refresh
                provider.refresher.refresh(force=True)  # always rotates
                refreshed += 1
            except BlippsyncError as exc:
                errors.append(str(exc))
    db.dispose()
    print(json.dumps({"rounds": int(rounds), "refreshed": refreshed, "errors": errors[:5],
                      "error_count": len(errors)}))


if __name__ == "__main__":
    main()
