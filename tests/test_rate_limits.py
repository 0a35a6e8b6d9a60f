"""Per-account API limits held across processes through PostgreSQL."""

from __future__ import annotations

import multiprocessing
import threading
import time

from blippsync.database import Database
from blippsync.rate_limits import SharedRateLimiter

WINDOW_SECONDS = 1.5
PER_WINDOW = 10


def _spend_calls(url: str, calls: int, hold: float, threads: int,
                 out: multiprocessing.Queue) -> None:
    db = Database(url, pool_size=threads)
    limiter = SharedRateLimiter(db, "test", PER_WINDOW, 2, window_seconds=WINDOW_SECONDS)
    spans: list[tuple[float, float]] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(calls):
            with limiter.slot("realm-1"):
                start = time.time()
                time.sleep(hold)
                with lock:
                    spans.append((start, time.time()))

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    db.dispose()
    out.put(spans)


def _run(url: str, calls: int, hold: float, threads: int) -> list[tuple[float, float]]:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_spend_calls, args=(url, calls, hold, threads, out))
             for _ in range(2)]
    for p in procs:
        p.start()
    spans = [span for _ in procs for span in out.get(timeout=120)]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    return sorted(spans)


def test_the_window_holds_across_processes(database_url: str) -> None:
    spans = _run(database_url, calls=6, hold=0.0, threads=2)  # 24 calls, 10 per 1.5 s
    starts = [s for s, _ in spans]
    assert len(starts) == 24
    for i, start in enumerate(starts):  # no 1.5 s window holds more than 10 calls
        in_window = [t for t in starts[i:] if t - start < WINDOW_SECONDS - 0.05]
        assert len(in_window) <= PER_WINDOW, f"{len(in_window)} calls within one window"
    assert starts[-1] - starts[0] >= 2 * WINDOW_SECONDS - 0.2  # it really had to wait


def test_in_flight_slots_hold_across_processes(database_url: str) -> None:
    spans = _run(database_url, calls=2, hold=0.25, threads=3)  # 6 threads, 2 slots
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert peak == 2
