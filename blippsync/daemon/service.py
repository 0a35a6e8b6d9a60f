"""`blippsync run`: the long-running service, one of any number of replicas.

Threads: the main one runs the `schedule` jobs (claim due connections, journeys, token
sweep, daily tasks, heartbeat); a pool of `daemon.workers` threads does connection work
under leases; one thread renews those leases; one serves HTTP; one waits for signals.
Every piece of state that matters lives in PostgreSQL, so a replica can die at any
instant and another carries on.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import Any

import schedule

from blippsync.config import Config
from blippsync.daemon import heartbeat, leases, shutdown
from blippsync.daemon.jobs import Jobs
from blippsync.daemon.worker import Worker
from blippsync.database import Database
from blippsync.http import HttpServer, HttpState, build_app
from blippsync.metrics import DaemonMetrics
from blippsync.plugins import Plugins
from blippsync.runner import FILE_CONNECTORS

log = logging.getLogger(__name__)
HEARTBEAT_SECONDS = 5.0
DAILY_CHECK_SECONDS = 300


class Daemon:
    def __init__(self, config: Config, db: Database, plugins: Plugins, *,
                 daemon_id: str | None = None) -> None:
        self.config, self.db, self.plugins = config, db, plugins
        self.id = daemon_id or heartbeat.new_daemon_id(config["daemon.id"])
        self.metrics = DaemonMetrics(db)
        self.workers = max(1, int(config["daemon.workers"]))
        self.lease_seconds = int(config["daemon.lease_seconds"])
        self.grace_seconds = float(config["daemon.shutdown_grace_seconds"])
        self.tick_seconds = float(config["daemon.tick_seconds"])
        self.stopping = threading.Event()
        self.stopped = threading.Event()
        # set when a worker frees up: the next lease is claimed at once, not a tick later
        # (otherwise every sync costs half a tick of idle worker on average)
        self._worker_freed = threading.Event()
        self.worker = Worker(db, config, plugins, self.metrics, self.id)
        self.jobs = Jobs(db, config, plugins, self.metrics, self.id)
        self.scheduler = schedule.Scheduler()
        self.active: dict[uuid.UUID, tuple[Future[None], threading.Event]] = {}
        self._active_lock = threading.Lock()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="connection")
        self._last_tick: float | None = None
        self._http: HttpServer | None = None
        self._watchdog: shutdown.Watchdog | None = None

    # --- life cycle ---------------------------------------------------------------------

    def scheduler_age(self) -> float | None:
        return None if self._last_tick is None else time.monotonic() - self._last_tick

    @property
    def http_port(self) -> int | None:
        return self._http.port if self._http is not None else None

    def start_http(self) -> None:
        state = HttpState(config=self.config, db=self.db, plugins=self.plugins,
                          metrics=self.metrics, scheduler_age=self.scheduler_age,
                          daemon_id=self.id)
        self._http = HttpServer(build_app(state), self.config["http.host"],
                                int(self.config["http.port"]))
        self._http.start()

    def run(self, *, handle_signals: bool = True) -> int:
        """Serve until asked to stop; return the exit status (0 after a graceful stop)."""
        if handle_signals:
            shutdown.block_signals()
            shutdown.start_signal_thread(lambda _signum: self.request_stop())
        heartbeat.started(self.db, self.id, {"workers": self.workers})
        self._last_tick = time.monotonic()  # just started: stale only if the first pass hangs
        if self.config["http.enabled"]:
            self.start_http()
        renewer = threading.Thread(target=self._renew_loop, name="lease-renewer", daemon=True)
        renewer.start()
        self._schedule_jobs()
        log.info("daemon %s running (%d workers, lease %ds)", self.id, self.workers,
                 self.lease_seconds)
        while not self.stopping.is_set():
            self._tick()
            pause = max(0.05, min(self.tick_seconds, self.scheduler.idle_seconds or 0))
            if self._worker_freed.wait(pause) and not self.stopping.is_set():
                self._worker_freed.clear()
                self._guard("claim", self.claim_work)
        return self._shutdown()

    def request_stop(self) -> None:
        """Stop claiming; ask the work in hand to stop at its next checkpoint; bound the wait."""
        if self.stopping.is_set():
            return
        self.stopping.set()
        self._worker_freed.set()  # wake the main loop
        with self._active_lock:
            for _future, halt in self.active.values():
                halt.set()
        self._watchdog = shutdown.Watchdog(self.grace_seconds, self._grace_expired)
        self._watchdog.start()

    def _shutdown(self) -> int:
        with self._active_lock:
            futures = [f for f, _h in self.active.values()]
        wait_futures(futures, timeout=self.grace_seconds)
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._release_everything()
        if self._watchdog is not None:
            self._watchdog.cancel()
        self.stopped.set()
        if self._http is not None:
            self._http.stop()
        log.info("daemon %s stopped", self.id)
        return 0

    def _grace_expired(self) -> None:
        log.warning("shutdown grace of %.0fs over: exiting with work in hand (its last "
                    "checkpoint is kept)", self.grace_seconds)
        releaser = threading.Thread(target=self._release_everything, daemon=True)
        releaser.start()
        releaser.join(3.0)
        shutdown.exit_now(0)

    def _release_everything(self) -> None:
        try:
            released = leases.release_all(self.db, self.id)
            heartbeat.stopped(self.db, self.id)
            if released:
                log.info("released %d leases", len(released))
        except Exception as exc:  # the leases expire on their own
            log.warning("could not release leases (they expire by themselves): %s", exc)

    # --- jobs ---------------------------------------------------------------------------

    def _schedule_jobs(self) -> None:
        def every(seconds: float) -> schedule.Job:
            # schedule annotates int, but fractional seconds work (timedelta arithmetic)
            return self.scheduler.every(seconds)  # type: ignore[arg-type]

        every(self.tick_seconds).seconds.do(self._guard, "claim", self.claim_work)
        every(float(self.config["daemon.journey_interval_seconds"])).seconds.do(
            self._guard, "journeys", self.jobs.journeys)
        every(int(self.config["daemon.token_refresh_interval_seconds"])).seconds.do(
            self._guard, "token refresh", self.jobs.refresh_tokens)
        every(float(self.config["daemon.inbox_scan_seconds"])).seconds.do(
            self._guard, "csv inbox", self.jobs.csv_inbox)
        every(HEARTBEAT_SECONDS).seconds.do(self._guard, "heartbeat",
                                            lambda: heartbeat.tick(self.db, self.id))
        every(DAILY_CHECK_SECONDS).seconds.do(self._guard, "reconcile", self.jobs.reconcile)
        every(DAILY_CHECK_SECONDS).seconds.do(self._guard, "retention", self.jobs.retention)
        self.scheduler.run_all()  # everything once at start, then on its period

    def _tick(self) -> None:
        self.scheduler.run_pending()
        self._last_tick = time.monotonic()
        self.metrics.scheduler_ticks.inc()

    def _guard(self, name: str, job: Callable[[], Any]) -> None:
        """A failing job is logged and retried on its next period; the loop goes on."""
        if self.stopping.is_set():
            return
        try:
            job()
        except Exception as exc:
            log.warning("%s failed: %s: %s", name, type(exc).__name__, exc,
                        exc_info=log.isEnabledFor(logging.DEBUG))

    def claim_work(self) -> None:
        with self._active_lock:
            free = self.workers - len(self.active)
        if free <= 0 or self.stopping.is_set():
            return
        for lease in leases.claim(self.db, self.id, limit=free, lease_seconds=self.lease_seconds,
                                  unscheduled=FILE_CONNECTORS):
            halt = threading.Event()
            with self._active_lock:
                future = self._pool.submit(self.worker.work_on, lease, halt)
                self.active[lease.connection_id] = (future, halt)
            future.add_done_callback(functools.partial(self._done, lease.connection_id))
            if self.stopping.is_set():
                halt.set()
        self.metrics.leases_held.set(len(self.active))

    def _done(self, connection_id: uuid.UUID, _future: Future[None] | None = None) -> None:
        with self._active_lock:
            self.active.pop(connection_id, None)
            self.metrics.leases_held.set(len(self.active))
        self._worker_freed.set()

    def _renew_loop(self) -> None:
        period = max(0.5, self.lease_seconds / 3)
        while not self.stopped.wait(period):
            with self._active_lock:
                held = dict(self.active)
            if not held:
                continue
            try:
                kept = leases.renew(self.db, self.id, list(held), lease_seconds=self.lease_seconds)
            except Exception as exc:
                log.warning("lease renewal failed (retrying): %s", exc)
                continue
            for connection_id, (_future, halt) in held.items():
                if connection_id not in kept and not _future.done():
                    self.metrics.lease_lost.inc()
                    log.warning("lease on connection %s was lost: stopping its work at the "
                                "next checkpoint", connection_id)
                    halt.set()
