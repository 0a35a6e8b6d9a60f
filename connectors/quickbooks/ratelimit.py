"""Intuit's per-company limits, shared by every process on this machine: at most
`per_minute` requests in any 60 s window and `max_in_flight` at once.

Both live in small files under one folder, guarded by flock, so a crashed process frees
its in-flight slot the instant it dies (the kernel drops its locks) and no coordinator is
needed. The window is exact: the file holds the times of the last `per_minute` requests.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import struct
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

WINDOW_SECONDS = 60.0
SLOT_POLL_SECONDS = 0.02


class RateLimiter(Protocol):
    def slot(self, account: str) -> contextlib.AbstractContextManager[None]:
        """Wait for budget and a free in-flight slot; hold the slot during the request."""


def default_dir() -> Path:
    return Path(tempfile.gettempdir()) / f"blippsync-ratelimit-{os.getuid()}"


class LocalRateLimiter:
    def __init__(self, directory: Path | None, per_minute: int, max_in_flight: int,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep):
        self.directory = directory or default_dir()
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.per_minute, self.max_in_flight = per_minute, max_in_flight
        self.clock, self.sleep = clock, sleep

    def _path(self, account: str, suffix: str) -> Path:
        return self.directory / f"qbo-{hashlib.sha256(account.encode()).hexdigest()[:16]}.{suffix}"

    @contextlib.contextmanager
    def slot(self, account: str) -> Iterator[None]:
        with self._in_flight(account):
            self._spend(account)
            yield

    @contextlib.contextmanager
    def _in_flight(self, account: str) -> Iterator[None]:
        while True:
            for i in range(self.max_in_flight):
                fd = os.open(self._path(account, f"slot{i}"), os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(fd)
                    continue
                try:
                    yield
                finally:
                    os.close(fd)  # releases the lock
                return
            self.sleep(SLOT_POLL_SECONDS)

    def _spend(self, account: str) -> None:
        """Record one request in the window, waiting first if the window is full."""
        while True:
            fd = os.open(self._path(account, "window"), os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                raw = os.pread(fd, 8 * self.per_minute + 8, 0)
                now = self.clock()
                times = [t for t in struct.unpack(f"<{len(raw) // 8}d", raw[:len(raw) // 8 * 8])
                         if now - t < WINDOW_SECONDS]
                if len(times) < self.per_minute:
                    times.append(now)
                    data = struct.pack(f"<{len(times)}d", *times)
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, data, 0)
                    return
                wait = WINDOW_SECONDS - (now - min(times))
            finally:
                os.close(fd)
            self.sleep(max(wait, 0.01))
