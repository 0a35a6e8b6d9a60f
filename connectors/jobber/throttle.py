"""Pacing on Jobber's query-cost leaky bucket.

Every response reports `extensions.cost.throttleStatus` (maximumAvailable,
currentlyAvailable, restoreRate points per second). Before each query we predict what
the bucket holds now and, if that is less than the query will ask for, sleep just long
enough for it to refill. The official template instead sleeps until the bucket is full
again whenever it drops under 60%, which roughly doubles a backfill's time.

The prediction is conservative: the reported level is taken as of the moment we received
the response (the server measured it a little earlier), so we never expect more than is
there. A query's expected cost is the `requestedQueryCost` Jobber last reported for the
same query shape, or our own estimate before the first answer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_MAXIMUM_POINTS = 10_000.0  # documented bucket size, used until Jobber tells us
DEFAULT_RESTORE_POINTS_PER_SECOND = 500.0
SAFETY_FRACTION = 0.005  # of the bucket, kept in hand against rounding and clock jitter


@dataclass(frozen=True)
class BucketReading:
    maximum: float
    available: float
    restore_rate: float
    at: float  # our monotonic clock when the response arrived


def reading_from(cost: Mapping[str, Any] | None, at: float) -> BucketReading | None:
    """The throttleStatus of an `extensions.cost` block, or None if it has none."""
    status = (cost or {}).get("throttleStatus") or {}
    try:
        return BucketReading(maximum=float(status["maximumAvailable"]),
                             available=float(status["currentlyAvailable"]),
                             restore_rate=float(status["restoreRate"]), at=at)
    except (KeyError, TypeError, ValueError):
        return None


class CostThrottle:
    """Knows the last bucket reading and the requested cost of each query shape."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.clock = clock
        self.sleep = sleep
        self.reading: BucketReading | None = None
        self.requested: dict[str, float] = {}
        self.slept_seconds = 0.0

    @property
    def maximum(self) -> float:
        return self.reading.maximum if self.reading else DEFAULT_MAXIMUM_POINTS

    def expected_cost(self, shape: str, estimate: float) -> float:
        return max(self.requested.get(shape, 0.0), estimate)

    def observe(self, shape: str, cost: Mapping[str, Any] | None) -> None:
        reading = reading_from(cost, self.clock())
        if reading is not None:
            self.reading = reading
        requested = (cost or {}).get("requestedQueryCost")
        if isinstance(requested, int | float) and requested > 0:
            self.requested[shape] = float(requested)

    def predicted_available(self, now: float) -> float:
        r = self.reading
        if r is None:
            return DEFAULT_MAXIMUM_POINTS
        return min(r.maximum, r.available + r.restore_rate * max(0.0, now - r.at))

    def seconds_until(self, cost: float) -> float:
        """How long until the bucket holds `cost` points (plus a small safety margin)."""
        r = self.reading
        if r is None:
            return 0.0
        need = min(r.maximum, cost + SAFETY_FRACTION * r.maximum)
        missing = need - self.predicted_available(self.clock())
        rate = r.restore_rate if r.restore_rate > 0 else DEFAULT_RESTORE_POINTS_PER_SECOND
        return max(0.0, missing / rate)

    def wait_for(self, cost: float) -> float:
        """Sleep until a query of `cost` points fits; returns the seconds slept."""
        seconds = self.seconds_until(cost)
        if seconds > 0:
            self.sleep(seconds)
            self.slept_seconds += seconds
        return seconds
