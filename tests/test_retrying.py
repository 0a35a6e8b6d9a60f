"""The one retry policy (blippsync.retrying): Retry-After in both of RFC 9110's forms,
jittered exponential backoff, bounded tries, final errors passing straight through."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from blippsync.errors import ConnectorError, TransientError
from blippsync.retrying import RetryableFault, RetryPolicy, call_with_retries, retry_after_seconds

NOW = datetime(1999, 12, 31, 23, 59, 0, tzinfo=UTC)
LOG = logging.getLogger("test.retrying")


@pytest.mark.parametrize("value, seconds", [
    ("120", 120.0),
    ("Fri, 31 Dec 1999 23:59:59 GMT", 59.0),  # RFC 9110's own example of an HTTP date
    ("Friday, 31-Dec-99 23:59:59 GMT", 59.0),  # the obsolete RFC 850 form it still allows
    ("Fri, 31 Dec 1999 23:58:00 GMT", 0.0),  # already past: now
    ("soon", None), ("", None), (None, None), ("-5", None),
])
def test_retry_after_reads_seconds_and_http_dates(value: str | None,
                                                  seconds: float | None) -> None:
    assert retry_after_seconds(value, now=NOW) == seconds


def _flaky(*outcomes: Exception | str) -> tuple[list[int], object]:
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        outcome = outcomes[len(calls) - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome
    return calls, fn


def test_waits_what_the_provider_asked_else_a_jittered_exponential_backoff() -> None:
    waits: list[float] = []
    throttled: list[float] = []
    calls, fn = _flaky(RetryableFault("429", retry_after=7.0, throttled=True),
                       RetryableFault("503"), RetryableFault("503"), "ok")
    policy = RetryPolicy(attempts=4, initial_seconds=1.0, max_seconds=60, jitter_seconds=0.5)
    assert call_with_retries(fn, policy, what="t", log=LOG, sleep=waits.append,  # type: ignore[arg-type]
                             on_throttle_wait=throttled.append) == "ok"
    assert len(calls) == 4
    # backoff by try number: the 2nd and 3rd tries failed, so 2 s and 4 s, plus jitter
    assert 7.0 <= waits[0] <= 7.5 and 2.0 <= waits[1] <= 2.5 and 4.0 <= waits[2] <= 4.5
    assert throttled == waits[:1]  # only the throttle's wait is counted as one


def test_tries_are_bounded_and_final_errors_are_not_retried() -> None:
    calls, fn = _flaky(*[RetryableFault("SystemFault")] * 3)
    with pytest.raises(TransientError, match="t: SystemFault; gave up after 3 tries"):
        call_with_retries(fn, RetryPolicy(attempts=3, initial_seconds=0), what="t", log=LOG,  # type: ignore[arg-type]
                          sleep=lambda s: None)
    assert len(calls) == 3
    calls, fn = _flaky(ConnectorError("ValidationFault"), "never")
    with pytest.raises(ConnectorError, match="ValidationFault"):
        call_with_retries(fn, RetryPolicy(), what="t", log=LOG, sleep=lambda s: None)  # type: ignore[arg-type]
    assert len(calls) == 1


def test_a_wait_longer_than_we_keep_a_pass_waiting_ends_it() -> None:
    calls, fn = _flaky(RetryableFault("429", retry_after=3600.0, throttled=True), "ok")
    with pytest.raises(TransientError, match="asks us to wait 3600s"):
        call_with_retries(fn, RetryPolicy(max_retry_after_seconds=300), what="t", log=LOG,  # type: ignore[arg-type]
                          sleep=lambda s: None)
