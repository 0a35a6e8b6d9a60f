"""Running the Starlette app under uvicorn in a thread of the daemon process.

Uvicorn installs no signal handlers outside the main thread, so SIGTERM stays with the
daemon's own shutdown logic, which stops this server last (after the work in hand).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import uvicorn

from blippsync.errors import ConfigError
from blippsync.proxy_peer import keep_peer

log = logging.getLogger(__name__)
START_TIMEOUT_SECONDS = 10.0


class HttpServer:
    def __init__(self, app: Any, host: str, port: int) -> None:
        self.host = host
        # proxy headers handled by keep_peer, as uvicorn would, keeping the real peer
        config = uvicorn.Config(keep_peer(app), host=host, port=port, log_config=None,
                                access_log=False, lifespan="off", timeout_graceful_shutdown=2,
                                server_header=False, date_header=False, proxy_headers=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="http", daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise ConfigError(f"http: cannot listen on {self.host}:"
                                  f"{self.server.config.port} (in use, or not allowed?)")
            time.sleep(0.01)
        log.info("http: listening on http://%s:%d", self.host, self.port)

    @property
    def port(self) -> int:
        sockets = self.server.servers[0].sockets if self.server.servers else []
        return int(sockets[0].getsockname()[1]) if sockets else int(self.server.config.port)

    def stop(self, timeout: float = 5.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)
