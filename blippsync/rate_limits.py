"""Per-account API limits shared by every process and host using one database.

A request takes one of `max_in_flight` slots (a session advisory lock, freed by
PostgreSQL the moment a crashed process's connection drops) and spends one call of a
sliding window (rows in blippsync.api_calls, accounted by blippsync.spend_api_call under
a transaction lock). The sync engine hands connectors a factory for these through
`ConnectorContext.shared_limiter`.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator

import sqlalchemy as sa

from blippsync.database import Database

SLOT_POLL_SECONDS = 0.02
_TAKE_SLOT = sa.text("SELECT pg_try_advisory_lock(hashtext(:key), :slot)")
_FREE_SLOT = sa.text("SELECT pg_advisory_unlock(hashtext(:key), :slot)")
_SPEND = sa.text("SELECT blippsync.spend_api_call(:key, :per_window, :window)")


class SharedRateLimiter:
    """At most `per_window` calls in any `window_seconds` and `max_in_flight` at once, per
    account, counted across everyone using the database.

    One connection of its own (autocommit), so a request costs three short statements;
    threads of one process share it, taking distinct slots. `close()` frees it.
    """

    def __init__(self, db: Database, namespace: str, per_window: int, max_in_flight: int,
                 window_seconds: float = 60.0, sleep: Callable[[float], None] = time.sleep):
        self.db, self.namespace = db, namespace
        self.per_window, self.max_in_flight = per_window, max_in_flight
        self.window_seconds, self.sleep = window_seconds, sleep
        self._conn: sa.Connection | None = None
        self._mutex = threading.Lock()
        self._held: set[tuple[str, int]] = set()  # session locks are re-entrant: track ours

    @contextlib.contextmanager
    def slot(self, account: str) -> Iterator[None]:
        key = f"{self.namespace}:{account}"
        slot = self._take_slot(key)
        try:
            self._spend(key)
            yield
        finally:
            with self._mutex:
                self._execute(_FREE_SLOT, {"key": key, "slot": slot})
                self._held.discard((key, slot))

    def close(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.close()  # back to the pool: PostgreSQL drops its session locks
                self._conn = None

    def _execute(self, statement: sa.TextClause, params: dict[str, object]) -> object:
        if self._conn is None:
            self._conn = self.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn.execute(statement, params).scalar_one()

    def _take_slot(self, key: str) -> int:
        while True:
            with self._mutex:
                for slot in range(self.max_in_flight):
                    if (key, slot) not in self._held and self._execute(
                            _TAKE_SLOT, {"key": key, "slot": slot}):
                        self._held.add((key, slot))
                        return slot
            self.sleep(SLOT_POLL_SECONDS)

    def _spend(self, key: str) -> None:
        params = {"key": key, "per_window": self.per_window, "window": self.window_seconds}
        while True:
            with self._mutex:
                wait = float(self._execute(_SPEND, params))  # type: ignore[arg-type]
            if wait <= 0:
                return
            self.sleep(wait)


class LimiterFactory:
    """What the sync engine hands a connector as `shared_limiter`: builds limiters for one
    pass and closes their connections when the pass ends."""

    def __init__(self, db: Database, namespace: str) -> None:
        self.db, self.namespace = db, namespace
        self._made: list[SharedRateLimiter] = []

    def __call__(self, per_minute: int, max_in_flight: int) -> SharedRateLimiter:
        limiter = SharedRateLimiter(self.db, self.namespace, per_minute, max_in_flight)
        self._made.append(limiter)
        return limiter

    def close(self) -> None:
        for limiter in self._made:
            limiter.close()
