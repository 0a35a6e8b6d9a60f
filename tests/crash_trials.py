"""SIGKILL trials at random instants, shared by tests/test_crash_trials.py (CI-sized) and
bench/bench_kill_trials.py (the issue's sizes, 20 trials each).

Each trial kills a real `blippsync` process with SIGKILL at a random instant, then does
what a user or a supervisor does next (run the same command again at once, or start
another daemon) and compares the final state with a clean run:

- csv: a large import killed, then re-run at once (the killed session may still hold the
  connection's lock: the re-run must wait for it, never report an empty success);
- quickbooks: a backfill under the issue's fault mix killed, then `run-once` again;
- smtp: daemons sending through a slow SMTP server (aiosmtpd), one killed mid-send.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from aiosmtpd.controller import Controller
from fakes.fault_worlds import REPO, blippsync, differences, quickbooks_world
from fakes.faults import FaultPlan
from journey_support import apply, make_business, rows, seed_due, sequence

from blippsync.businesses import add_business
from blippsync.database import Database


@dataclass
class TrialReport:
    scenario: str
    trials: int = 0
    killed_mid_run: int = 0  # the kill landed while the process was still working
    reruns_failed: int = 0
    waited_for_lock: int = 0  # re-runs that found the killed session's lock and waited
    trials_differing: int = 0  # final state not equal to the clean run's
    problems: list[str] = field(default_factory=list)
    unknown_per_kill: list[int] = field(default_factory=list)
    sent_twice: int = 0
    never_delivered_unknown: int = 0  # unknown and not received: released by the operator
    started: float = field(default_factory=time.monotonic)

    def line(self) -> str:
        text = (f"{self.scenario}: {self.trials} trials, {self.killed_mid_run} killed mid-run, "
                f"{self.reruns_failed} re-runs failed, {self.trials_differing} final states "
                "differing from the clean run")
        if self.scenario == "csv":
            text += f", {self.waited_for_lock} re-runs waited for the killed session's lock"
        if self.unknown_per_kill:
            text += (f", unknown per kill max {max(self.unknown_per_kill)} "
                     f"(all: {self.unknown_per_kill}), {self.sent_twice} messages sent twice, "
                     f"{self.never_delivered_unknown} unknown never delivered (released by the "
                     "operator path, then sent once)")
        return text + f"; {time.monotonic() - self.started:.0f}s"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BLIPPSYNC_")}
    env["BLIPPSYNC_LOGGING_FORMAT"] = "text"
    return env


def _start(config: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "blippsync", "--config", str(config), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(), cwd=REPO)


def _kill_at(proc: subprocess.Popen[str], after: float) -> bool:
    """SIGKILL `proc` after `after` seconds; True when it was still running."""
    deadline = time.monotonic() + after
    while time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)
    alive = proc.poll() is None
    if alive:
        proc.send_signal(signal.SIGKILL)
    proc.communicate()
    return alive


# --- csv: a large import killed, re-run at once ---------------------------------------------

def write_csv(path: Path, n: int) -> None:
    today = datetime.now(UTC).date()
    with path.open("w", newline="") as fh:
        fh.write("Customer ID,Name,Email,Phone,Completed At\r\n")
        for i in range(n):
            day = today - timedelta(days=i % 30)  # half inside the 14-day horizon
            fh.write(f"K{i},Person {i},person{i}@crash.test,(212) 555-{i % 10000:04d},"
                     f"{day.isoformat()}\r\n")


def csv_state(db: Database, business: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with db.connect() as conn:
        customers = conn.execute(sa.text(
            "SELECT external_id, name, email, phone FROM customers WHERE business_id = :b "
            "ORDER BY external_id"), {"b": business}).all()
        events = conn.execute(sa.text(
            "SELECT dedupe_key, event_type, historical, occurred_at FROM trigger_events "
            "WHERE business_id = :b ORDER BY dedupe_key"), {"b": business}).all()
    return [tuple(c) for c in customers], [tuple(e) for e in events]


@contextmanager
def autoanalyze(db: Database, every_seconds: float = 10.0) -> Iterator[None]:
    """ANALYZE the growing tables now and then, as production's autovacuum does: the test
    server runs with autovacuum off, and without statistics a large import slows down
    batch after batch (a planner without row counts)."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(every_seconds):
            with db.connect() as conn:
                conn.execute(sa.text("ANALYZE public.customers, public.trigger_events, "
                                     "public.customer_identities"))
                conn.commit()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def csv_trials(db: Database, database_url: str, tmp_path: Path, rows_n: int, trials: int,
               seed: int = 20261203, log: Callable[[str], None] = lambda s: None
               ) -> TrialReport:
    with autoanalyze(db):
        return _csv_trials(db, database_url, tmp_path, rows_n, trials, seed, log)


def _csv_trials(db: Database, database_url: str, tmp_path: Path, rows_n: int, trials: int,
                seed: int, log: Callable[[str], None]) -> TrialReport:
    report = TrialReport("csv")
    config = tmp_path / "csv.toml"
    config.write_text(f'[database]\nurl = "{database_url}"\n[sync]\nbatch_size = 2000\n')
    path = tmp_path / "customers.csv"
    write_csv(path, rows_n)
    clean = add_business(db, name="Clean", owner_email="c@crash.test", timezone="UTC")
    started = time.monotonic()
    out = _start(config, "import", "csv", str(path), "--business", str(clean))
    out.communicate()
    full_seconds = time.monotonic() - started
    expected = csv_state(db, clean)
    assert len(expected[0]) == rows_n, "the clean import did not import every row"
    rnd = random.Random(seed)
    for trial in range(trials):
        business = add_business(db, name=f"Killed {trial}", owner_email="k@crash.test",
                                timezone="UTC")
        proc = _start(config, "import", "csv", str(path), "--business", str(business))
        # the clean import's length was measured once; a re-import may be faster, so the
        # kill is drawn from the first half of it to land mid-import
        report.killed_mid_run += _kill_at(proc, rnd.uniform(0.05, 0.5) * full_seconds)
        again = _start(config, "import", "csv", str(path), "--business", str(business))
        out_text, err_text = again.communicate()
        report.trials += 1
        report.waited_for_lock += "waiting up to" in err_text
        if again.returncode != 0:
            report.reruns_failed += 1
            report.problems.append(f"trial {trial}: re-run exit {again.returncode}: "
                                   f"{err_text.strip()[-300:]}")
        if csv_state(db, business) != expected:
            report.trials_differing += 1
            got = csv_state(db, business)
            report.problems.append(f"trial {trial}: {len(got[0])} customers, {len(got[1])} "
                                   f"events (clean: {len(expected[0])}, {len(expected[1])})")
        log(f"csv trial {trial + 1}/{trials}: {report.line()}")
    return report


# --- quickbooks: a backfill under faults killed, run again ----------------------------------

def quickbooks_trials(db: Database, database_url: str, tmp_path: Path, customers: int,
                      trials: int, seed: int = 7, page_size: int = 200,
                      log: Callable[[str], None] = lambda s: None) -> TrialReport:
    report = TrialReport("quickbooks")
    rnd = random.Random(seed)

    def world(n: int) -> Any:
        return quickbooks_world(tmp_path / f"w{n}", database_url, db, customers,
                                FaultPlan.issue_mix(seed=seed + n), token_drop_rate=0.2,
                                token_lifetime_seconds=30, backoff_seconds=0.2,
                                page_size=page_size, use_cdc=False)

    with world(0) as (w, _):  # the clean run under the same faults, for its length
        started = time.monotonic()
        out = blippsync(w.config_path, "run-once", "--json", "--business", str(w.business_id))
        full_seconds = time.monotonic() - started
        assert out.returncode == 0 and differences(db, w) == [], out.stderr[-2000:]
    for trial in range(1, trials + 1):
        with world(trial) as (w, _):
            # each trial's business has its own fake Intuit: passes are kept to it
            only = ("run-once", "--json", "--business", str(w.business_id))
            proc = _start(w.config_path, *only)
            report.killed_mid_run += _kill_at(proc, rnd.uniform(0.1, 0.95) * full_seconds)
            again = blippsync(w.config_path, *only)
            report.trials += 1
            if again.returncode != 0:
                report.reruns_failed += 1
                report.problems.append(f"trial {trial}: re-run exit {again.returncode}: "
                                       f"{again.stderr.strip()[-300:]}")
            found = differences(db, w)
            if found:
                report.trials_differing += 1
                report.problems.append(f"trial {trial}: {found}")
        log(f"quickbooks trial {trial}/{trials}: {report.line()}")
    return report


# --- smtp: daemons sending through a slow SMTP server, one killed mid-send ------------------

class SlowSmtp:
    """aiosmtpd handler: takes `delay` seconds per message and counts them by send key."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.received: Counter[str] = Counter()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        await asyncio.sleep(self.delay)
        for line in envelope.content.decode(errors="replace").splitlines():
            if line.lower().startswith("x-blippsync-send-key:"):
                self.received[line.split(":", 1)[1].strip()] += 1
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _daemon_config(path: Path, database_url: str, smtp_port: int, chunk: int,
                   lease_seconds: int, batch: int) -> Path:
    path.write_text("\n".join([
        "[database]", f'url = "{database_url}"', "pool_size = 3",
        "[channels]", 'email = "smtp"',
        "[smtp]", 'host = "127.0.0.1"', f"port = {smtp_port}", "starttls = false",
        'from_address = "reviews@crash-trials.example.com"', "timeout_seconds = 10",
        "[journeys]", f"in_flight_chunk = {chunk}", f"send_lease_seconds = {lease_seconds}",
        "[daemon]", "tick_seconds = 0.2", "journey_interval_seconds = 0.3",
        f"journey_batch_size = {batch}", "inbox_scan_seconds = 3600",
        # the smtp channel refuses to start without a real From and a public base URL for
        # the unsubscribe links every email carries
        "[http]", "enabled = false", 'public_base_url = "https://sync.example.com"',
    ]) + "\n")
    return path


def _settled(db: Database, business: Any) -> bool:
    (row,) = rows(db, "SELECT count(*) FILTER (WHERE e.status = 'active') AS active "
                      "FROM customer_enrollments e JOIN sequences s ON s.id = e.sequence_id "
                      "WHERE s.business_id = :b", b=business)
    return row.active == 0


def smtp_trials(db: Database, database_url: str, tmp_path: Path, messages: int, trials: int,
                seed: int = 11, chunk: int = 20, smtp_delay: float = 0.01, lease_seconds: int = 30,
                batch: int = 40, log: Callable[[str], None] = lambda s: None) -> TrialReport:
    """The send lease must outlast a live daemon's batch (`batch` messages through the slow
    server), as `journeys.send_lease_seconds` must in production: a live but slower sender
    would otherwise see its in-flight chunk given up on as unknown by another daemon."""
    from blippsync.journeys.unknown import list_unknown, release_unknown

    report = TrialReport("smtp")
    rnd = random.Random(seed)
    handler = SlowSmtp(smtp_delay)
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    config = _daemon_config(tmp_path / "daemon.toml", database_url, port, chunk, lease_seconds,
                            batch)
    email = [{"type": "email", "delay_minutes": 0, "purpose": "thank_you",
              "subject": "Thanks {{ customer.first_name }}", "body": "Thank you!"}]
    expected_seconds = messages * smtp_delay / 2  # two daemons sending
    try:
        for trial in range(trials):
            business = make_business(db)
            (seq,) = apply(db, business, sequence(steps=email,
                                                  settings={"email_hours": "00:00-24:00"}))
            seed_due(db, business, seq, messages, datetime.now(UTC) - timedelta(seconds=1))
            keys = {f"{r.id}:0" for r in rows(db, "SELECT id FROM customer_enrollments "
                                                  "WHERE sequence_id = :s", s=seq)}
            daemons = [_start(config, "run"), _start(config, "run")]
            started = time.monotonic() + 60
            while not any(handler.received[k] for k in keys) and time.monotonic() < started:
                time.sleep(0.02)  # the daemons are up and sending...
            time.sleep(rnd.uniform(0, expected_seconds))  # ...and one dies at a random instant
            victim = daemons.pop(rnd.randrange(2))
            report.killed_mid_run += _kill_at(victim, 0)
            daemons.append(_start(config, "run"))  # the supervisor starts another one
            deadline = time.monotonic() + 120 + lease_seconds
            while not _settled(db, business) and time.monotonic() < deadline:
                time.sleep(0.2)
            unknown = [u for u in list_unknown(db, business)]
            report.unknown_per_kill.append(len(unknown))
            # the operator checks the SMTP server's log and releases what it never received
            got = {k: handler.received[k] for k in keys}
            never = [u["id"] for u in unknown
                     if got.get(_send_key(db, u["id"]), 0) == 0]
            report.never_delivered_unknown += len(never)
            release_unknown(db, never, "not in the SMTP server's log", datetime.now(UTC),
                            business)
            deadline = time.monotonic() + 60
            while not _settled(db, business) and time.monotonic() < deadline:
                time.sleep(0.2)
            for d in daemons:
                d.send_signal(signal.SIGTERM)
            for d in daemons:
                d.communicate(timeout=60)
            report.trials += 1
            got = {k: handler.received[k] for k in keys}
            twice = sum(1 for n in got.values() if n > 1)
            report.sent_twice += twice
            statuses = Counter(r.status for r in rows(
                db, "SELECT status FROM review_requests WHERE business_id = :b", b=business))
            delivered_unknown = statuses.get("unknown", 0)
            ok = (twice == 0 and all(n >= 1 for n in got.values()) and _settled(db, business)
                  and statuses.get("sent", 0) + delivered_unknown == messages
                  and len(unknown) <= chunk)
            if not ok:
                report.trials_differing += 1
                report.problems.append(f"trial {trial}: statuses {dict(statuses)}, "
                                       f"{sum(1 for n in got.values() if n == 0)} never received,"
                                       f" {twice} twice, {len(unknown)} unknown")
            log(f"smtp trial {trial + 1}/{trials}: {report.line()}")
    finally:
        controller.stop()
    return report


def _send_key(db: Database, request_id: Any) -> str:
    (row,) = rows(db, "SELECT send_key FROM review_requests WHERE id = :i", i=request_id)
    return str(row.send_key)
