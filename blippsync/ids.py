"""Time-ordered UUIDs (the UUIDv7 layout) for rows the core creates in bulk.

A customer's id is its primary key: random UUIDs scatter a bulk load's inserts across
the whole index, time-ordered ones append at its right edge, which keeps the pages a
load touches hot. They are still unique and unguessable in their 74 random bits.
"""

from __future__ import annotations

import os
import time
import uuid

_VERSION_7 = 0x7 << 76
_VARIANT = 0b10 << 62


def uuid7() -> uuid.UUID:
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    rand_a, rand_b = rand >> 62 & 0xFFF, rand & ((1 << 62) - 1)
    return uuid.UUID(int=(millis << 80) | _VERSION_7 | (rand_a << 64) | _VARIANT | rand_b)


def option_id(value: str | None, option: str) -> uuid.UUID | None:
    """The id a command-line option names (None when not given); InputError naming the
    option otherwise."""
    if not value:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        from blippsync.errors import InputError

        raise InputError(f"{option}: {value!r} is not an id (a UUID)") from None
