"""Signals: the first SIGTERM/SIGINT asks for a graceful stop, a second one exits at once.

Signals are blocked in every thread and taken by one thread with `sigwait`, so they are
handled at once even while the main thread sits in a database call. The graceful stop is
bounded: a watchdog exits the process (status 0, leases released first) when the work in
hand has not finished within `daemon.shutdown_grace_seconds`. Exiting mid-transaction
loses nothing committed: the transaction in flight rolls back, and the cursor committed
before it is where the next pass resumes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)
HANDLED = (signal.SIGTERM, signal.SIGINT)


def block_signals() -> None:
    """Block the stop signals in this thread and every thread started after (call first)."""
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)



def start_signal_thread(on_first: Callable[[int], None]) -> threading.Thread:
    """Wait for signals in a thread of their own: first -> `on_first`, second -> exit now."""

    def wait_for_signals() -> None:
        seen = 0
        while True:
            signum = signal.sigwait(HANDLED)
            seen += 1
            if seen == 1:
                log.info("received %s: stopping (send it again to exit at once)",
                         signal.Signals(signum).name)
                on_first(signum)
            else:
                log.warning("received %s again: exiting now", signal.Signals(signum).name)
                exit_now(128 + signum)

    thread = threading.Thread(target=wait_for_signals, name="signals", daemon=True)
    thread.start()
    return thread


def exit_now(status: int) -> None:
    """Leave without waiting for threads (flush what was logged first)."""
    for handler in logging.getLogger().handlers:
        with contextlib.suppress(Exception):  # exiting anyway
            handler.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


class Watchdog:
    """Calls `on_expiry` if not cancelled within `seconds` (the bound on a graceful stop)."""

    def __init__(self, seconds: float, on_expiry: Callable[[], None]) -> None:
        self._timer = threading.Timer(seconds, on_expiry)
        self._timer.daemon = True
        self._timer.name = "shutdown-watchdog"

    def start(self) -> None:
        self._timer.start()

    def cancel(self) -> None:
        self._timer.cancel()
