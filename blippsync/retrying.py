"""Retrying a provider call in place when its failure is transient: one policy for every
connector and the token vault, built on tenacity.

A call raises `RetryableFault` for what the provider says will pass (429, 5xx, a fault
marked temporary inside a 200, a timeout, a dropped connection); anything else is final
and goes straight through. Between tries we wait what the provider asked for
(`Retry-After`, in seconds or as an HTTP date) or else an exponential backoff with
jitter, so many workers hit by the same outage do not come back in step. When the tries
are spent the last fault surfaces as a TransientError naming the call and the count:
the pass fails, and keeps every page it already committed.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

import tenacity

from blippsync.errors import TransientError

T = TypeVar("T")


class RetryableFault(TransientError):
    """A failure the provider says is temporary; `retry_after`: how long it asked us to wait."""

    def __init__(self, message: str, *, retry_after: float | None = None,
                 throttled: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.throttled = throttled


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 6  # tries in all, the first included
    initial_seconds: float = 1.0  # first backoff; doubled on each further try
    max_seconds: float = 60.0  # cap of one computed backoff
    jitter_seconds: float = 1.0  # up to this much random time added to every wait
    max_retry_after_seconds: float = 300.0  # a longer Retry-After ends the pass instead


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """A Retry-After header's wait: delta-seconds or an HTTP date (RFC 9110, 10.2.3);
    None when absent or unreadable. A date in the past means "now"."""
    if not value or not value.strip():
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def call_with_retries(fn: Callable[[], T], policy: RetryPolicy, *, what: str,
                      log: logging.Logger, sleep: Callable[[float], None] = time.sleep,
                      on_throttle_wait: Callable[[float], None] | None = None) -> T:
    """fn(), tried again after each RetryableFault up to `policy.attempts` tries in all;
    the waits after a throttle are also told to `on_throttle_wait` (the pass counts them)."""
    backoff = (tenacity.wait_exponential(multiplier=policy.initial_seconds,
                                         max=policy.max_seconds)
               + tenacity.wait_random(0, policy.jitter_seconds))

    def wait(state: tenacity.RetryCallState) -> float:
        fault = _fault(state)
        if fault.retry_after is None:
            return float(backoff(state))
        if fault.retry_after <= 0:  # "now" (a throttle that already paced itself)
            return 0.0
        if fault.retry_after > policy.max_retry_after_seconds:
            raise TransientError(f"{what}: {fault}; the provider asks us to wait "
                                 f"{fault.retry_after:.0f}s, longer than we wait in place")
        return fault.retry_after + random.uniform(0, policy.jitter_seconds)

    def before_sleep(state: tenacity.RetryCallState) -> None:
        fault, pause = _fault(state), state.upcoming_sleep
        log.warning("%s: %s; retry %d/%d in %.1fs", what, fault, state.attempt_number,
                    policy.attempts - 1, pause)
        if fault.throttled and pause > 0 and on_throttle_wait is not None:
            on_throttle_wait(pause)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(RetryableFault),
        stop=tenacity.stop_after_attempt(max(1, policy.attempts)), wait=wait,
        sleep=lambda seconds: sleep(seconds) if seconds > 0 else None,
        before_sleep=before_sleep, reraise=True)
    try:
        return retrying(fn)
    except RetryableFault as fault:
        raise TransientError(f"{what}: {fault}; gave up after {policy.attempts} tries, "
                             "will try again on the next pass") from None


def _fault(state: tenacity.RetryCallState) -> RetryableFault:
    assert state.outcome is not None
    fault = state.outcome.exception()
    assert isinstance(fault, RetryableFault)
    return fault
