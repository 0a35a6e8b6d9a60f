"""Faults the real services produce, injected per call into the loopback fakes.

From the API notes (../shared/api/*.md): QuickBooks answers a throttle with HTTP 429 and
an XML ThrottleExceeded body even when JSON was asked for, fails with 500/503, and can
put a `SystemFault` ("An unexpected error occurred ... try again") inside an HTTP 200;
Jobber's limiter answers 429, an outage is 5xx `{"message": "Service temporarily
unavailable"}`, and GraphQL errors (INTERNAL_SERVER_ERROR) arrive inside a 200. Any of
them may answer slowly or drop the connection without an answer. Neither documents
`Retry-After`; the fakes send it on their 429s, as seconds or as an HTTP date in turn, so
the client's reading of both forms is exercised too.

A `FaultPlan` draws one fault (or none) per call from a seeded generator, so a run is
reproducible, and counts what it injected.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

KINDS = ("429", "5xx", "fault200", "drop", "slow")


@dataclass
class FaultPlan:
    """Per-call probabilities of each fault; the rest of the calls are answered normally."""

    rate_429: float = 0.0
    rate_5xx: float = 0.0
    rate_fault200: float = 0.0
    rate_drop: float = 0.0
    rate_slow: float = 0.0
    slow_seconds: float = 1.5  # longer than the client's timeout in the fault tests
    retry_after_seconds: float = 1.0  # on the 429s that carry Retry-After
    seed: int = 12
    injected: Counter[str] = field(default_factory=Counter)
    calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @classmethod
    def issue_mix(cls, seed: int = 12, **extra: float) -> FaultPlan:
        """The issue's mix: 5% 429, 5% 5xx, 3% faults inside a 200, 2% dropped connections."""
        return cls(rate_429=0.05, rate_5xx=0.05, rate_fault200=0.03, rate_drop=0.02, seed=seed,
                   **extra)

    def choose(self) -> str | None:
        with self._lock:
            self.calls += 1
            draw = self._rng.random()
            for kind, rate in zip(KINDS, (self.rate_429, self.rate_5xx, self.rate_fault200,
                                          self.rate_drop, self.rate_slow), strict=True):
                if draw < rate:
                    self.injected[kind] += 1
                    return kind
                draw -= rate
            return None

    def flip(self) -> bool:
        with self._lock:
            return self._rng.random() < 0.5

    def retry_after(self) -> dict[str, str]:
        """Retry-After as delta-seconds or as an HTTP date, in turn. (A 429 without it makes
        the QuickBooks client wait Intuit's 60 s: covered by tests/test_quickbooks_api.py.)"""
        with self._lock:
            form = self.injected["429"] % 2
        if form == 0:
            return {"Retry-After": str(int(self.retry_after_seconds))}
        when = datetime.now(UTC) + timedelta(seconds=self.retry_after_seconds)
        return {"Retry-After": format_datetime(when, usegmt=True)}

    def summary(self) -> str:
        return f"{self.calls} calls, injected " + ", ".join(
            f"{k} {self.injected[k]}" for k in KINDS if self.injected[k]) if self.calls else "none"


def answer(handler: BaseHTTPRequestHandler, status: int, body: bytes,
           headers: dict[str, str]) -> None:
    """Write a response; a client that gave up waiting (a slow answer) just closes it."""
    try:
        handler.send_response(status)
        for k, v in headers.items():
            handler.send_header(k, v)
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    except (BrokenPipeError, ConnectionResetError):
        handler.close_connection = True


@dataclass(frozen=True)
class FaultAnswers:
    """How one service words each fault: (status, headers, body) answers."""

    throttle: tuple[int, dict[str, str], bytes]
    unavailable: tuple[tuple[int, dict[str, str], bytes], ...]  # one picked at random
    fault_in_200: tuple[int, dict[str, str], bytes]


def misbehave(handler: BaseHTTPRequestHandler, fault: str, plan: FaultPlan | None,
              answers: FaultAnswers) -> bool:
    """Answer (or not) as the failing service would; False: answer normally after all."""
    assert plan is not None, "a fault comes from a plan"
    if fault == "429":
        status, headers, body = answers.throttle
        answer(handler, status, body, {**headers, **plan.retry_after()})
    elif fault == "5xx":
        status, headers, body = answers.unavailable[int(plan.flip()) % len(answers.unavailable)]
        answer(handler, status, body, headers)
    elif fault == "fault200":
        status, headers, body = answers.fault_in_200
        answer(handler, status, body, headers)
    elif fault == "drop":
        handler.close_connection = True  # read the request, answer nothing, hang up
    elif fault == "slow":
        time.sleep(plan.slow_seconds)  # the client has given up by now
        return False
    return True


class QuietServer(ThreadingHTTPServer):
    """A loopback server that takes a client hanging up on it (a killed process, a client
    that gave up on a slow answer) in its stride instead of printing a traceback."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]
