"""A third-party connector that authenticates with an API key, installed in tests through a
real entry point (tests/plugins/keyed/keyed_connector-1.0.dist-info).

It declares `credentials = ("api_key",)` and sends the key the core hands it in
`ctx.credentials` to `[plugins.keyed] base_url`, whose GET /customers answers a JSON list of
{"id", "name", "email", "completed_at"}."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime

from blippsync.connector import Connector, ConnectorContext
from blippsync.errors import AuthError, ConnectorError
from blippsync.hookspecs import hookimpl
from blippsync.records import Checkpoint, CustomerRecord, EventRecord, Record


class KeyedConnector:
    name = "keyed"
    version = "1.0"
    events = ("job_completed",)
    needs_oauth = False
    credentials = ("api_key",)

    def sync(self, ctx: ConnectorContext) -> Iterator[Record]:
        response = ctx.http.get(f"{ctx.settings['base_url']}/customers",
                                headers={"X-Api-Key": ctx.credentials["api_key"]})
        if response.status_code == 401:
            raise AuthError("keyed: the API key was refused")
        if response.status_code != 200:
            raise ConnectorError(f"keyed: HTTP {response.status_code}")
        for row in response.json():
            yield CustomerRecord(row["id"], name=row["name"], email=row["email"])
            yield EventRecord("job_completed", f"keyed:job:{row['id']}", row["id"],
                              datetime.fromisoformat(row["completed_at"]))
        yield Checkpoint({"seen": len(response.json())})


@hookimpl
def register_connectors(register: Callable[[Connector], None]) -> None:
    register(KeyedConnector())
