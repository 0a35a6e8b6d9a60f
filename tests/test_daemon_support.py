"""Shared by the daemon and HTTP tests (no tests here): a loopback remote system, a tiny
webhook-capable connector that talks to it over real HTTP, and a daemon child process.

The remote ("FakeRemote") is a threaded HTTP server holding a list of items; the
connector syncs them page by page (a Checkpoint per page), fetches single items for
webhook notices, and tells the remote when a sync pass begins and ends so the test can
see whether two passes of one connection ever overlapped.

Run as a script, it is one daemon replica: `python test_daemon_support.py CONFIG`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import sys
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from http_support import serving  # noqa: F401  (tests reach it as support.serving)

from blippsync.connector import ConnectorContext, WebhookNotice
from blippsync.hookspecs import hookimpl
from blippsync.records import Checkpoint, CustomerRecord, EventRecord, Record

SIGNATURE_HEADER = "x-loop-signature"
SECRET = "loop-secret"


def sign(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def webhook_body(events: Sequence[Mapping[str, Any]]) -> bytes:
    return json.dumps({"events": list(events)}).encode()


class LoopbackConnector:
    name = "loopback"
    version = "1.0"
    events = ("job_completed",)
    needs_oauth = False

    def sync(self, ctx: ConnectorContext) -> Iterator[Record]:
        base = ctx.settings["remote_url"]
        page = int(ctx.settings.get("page_size", 5))
        delay = float(ctx.settings.get("page_delay", 0))
        throttle = float(ctx.settings.get("throttle_wait", 0))  # a pretend rate-limit pause
        pass_id = uuid.uuid4().hex
        conn_id = str(ctx.connection_id)
        ctx.http.post(f"{base}/begin", params={"conn": conn_id, "pass": pass_id})
        try:
            after = int((ctx.cursor or {}).get("seq", 0))
            while True:
                items = ctx.http.get(f"{base}/changes", params={
                    "account": ctx.account_id, "after": after, "limit": page}).json()
                if not items:
                    return
                if throttle:
                    ctx.on_throttle_wait(throttle)
                for item in items:
                    yield from _records(item)
                after = items[-1]["seq"]
                if delay:
                    time.sleep(delay)
                yield Checkpoint({"seq": after})
        finally:
            ctx.http.post(f"{base}/end", params={"conn": conn_id, "pass": pass_id})

    def verify_webhook(self, headers: Mapping[str, str], body: bytes,
                       settings: Mapping[str, Any]) -> bool:
        given = headers.get(SIGNATURE_HEADER, "")
        return hmac.compare_digest(given, sign(body, settings.get("secret", SECRET)))

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> list[WebhookNotice]:
        return [WebhookNotice(account_id=e["account"], entity="item", entity_id=e["item"],
                              operation=e.get("op", "update"),
                              occurred_at=datetime.fromisoformat(e["at"]) if e.get("at") else None,
                              delivery_id=e.get("id"))
                for e in json.loads(body)["events"]]

    def fetch(self, ctx: ConnectorContext, notices: Sequence[WebhookNotice]) -> Iterator[Record]:
        base = ctx.settings["remote_url"]
        delay = float(ctx.settings.get("fetch_delay", 0))
        for notice in notices:
            if delay:
                time.sleep(delay)
            response = ctx.http.get(f"{base}/items/{notice.entity_id}")
            if response.status_code == 404:
                continue
            response.raise_for_status()
            yield from _records(response.json())


def _records(item: Mapping[str, Any]) -> Iterator[Record]:
    yield CustomerRecord(item["id"], name=item["name"], email=item["email"])
    yield EventRecord("job_completed", f"loop:job:{item['id']}", item["id"],
                      datetime.fromisoformat(item["at"]))


@hookimpl
def register_connectors(register):  # type: ignore[no-untyped-def]
    register(LoopbackConnector())


class FakeRemote:
    """The remote system on loopback: items by account, and who is syncing what."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.active: dict[str, set[str]] = defaultdict(set)
        self.max_concurrent: dict[str, int] = defaultdict(int)
        self.passes: dict[str, int] = defaultdict(int)
        self.begun: dict[str, list[float]] = defaultdict(list)  # time.time() of each pass
        self.changes_log: list[tuple[str, int]] = []  # (account, after) of every page asked
        self.requests = 0
        remote = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                with remote.lock:
                    remote.requests += 1
                    if url.path == "/changes":
                        after, limit = int(q["after"]), int(q["limit"])
                        remote.changes_log.append((q.get("account", ""), after))
                        found = [i for i in remote.items
                                 if i["account"] == q.get("account", "") and i["seq"] > after]
                        return self._send(200, found[:limit])
                    if url.path.startswith("/items/"):
                        wanted = url.path.split("/", 2)[2]
                        for item in remote.items:
                            if item["id"] == wanted:
                                return self._send(200, item)
                        return self._send(404, {"error": "no such item"})
                return self._send(404, {})

            def do_POST(self) -> None:  # noqa: N802
                url = urlparse(self.path)
                q = {k: v[0] for k, v in parse_qs(url.query).items()}
                with remote.lock:
                    if url.path == "/begin":
                        remote.active[q["conn"]].add(q["pass"])
                        remote.passes[q["conn"]] += 1
                        remote.begun[q["conn"]].append(time.time())
                        remote.max_concurrent[q["conn"]] = max(remote.max_concurrent[q["conn"]],
                                                              len(remote.active[q["conn"]]))
                    elif url.path == "/end":
                        remote.active[q["conn"]].discard(q["pass"])
                self._send(200, {})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeRemote:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(self, account: str, item_id: str, at: datetime | None = None) -> dict[str, Any]:
        with self.lock:
            item = {"seq": len(self.items) + 1, "account": account, "id": item_id,
                    "name": f"Customer {item_id}", "email": f"{item_id}@loop.test",
                    "at": (at or datetime.now(UTC)).isoformat()}
            self.items.append(item)
            return item


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(path: Path, database_url: str, remote_url: str, *, port: int = 0,
                 extra: str = "", **daemon: Any) -> Path:
    """A config.toml for a daemon replica of the tests (`extra`: more TOML sections)."""
    lines = ["[database]", f'url = "{database_url}"', "auto_migrate = false", "pool_size = 4",
             "[logging]", 'format = "json"', 'level = "INFO"', extra,
             "[daemon]"]
    settings = {"tick_seconds": 0.2, "journey_interval_seconds": 0.5, "lease_seconds": 6,
                "shutdown_grace_seconds": 8.0, "retry_seconds": 1, **daemon}
    lines += [f"{k} = {json.dumps(v)}" for k, v in settings.items()]
    lines += ["[http]", 'host = "127.0.0.1"', f"port = {port}",
              "[plugins.loopback]", f'remote_url = "{remote_url}"', f'secret = "{SECRET}"']
    path.write_text("\n".join(lines) + "\n")
    return path


def child_main(config_path: str) -> int:
    """One daemon replica with the loopback connector loaded through `extra`."""
    from blippsync.config import load_config
    from blippsync.daemon import Daemon
    from blippsync.database import Database
    from blippsync.logs import configure_logging
    from blippsync.plugins import load_plugins

    config = load_config(config_path, environ={})
    configure_logging(config)
    db = Database.from_config(config)
    plugins = load_plugins(extra=[("loopback", sys.modules[__name__])])
    return Daemon(config, db, plugins).run()


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1]))

