"""The built-in channels, registered through the `blippsync` entry-point group exactly as a
third-party channel package would be."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from blippsync.channels.outbox import OutboxChannel
from blippsync.channels.smtp import SmtpChannel
from blippsync.channels.twilio import TwilioChannel
from blippsync.hookspecs import hookimpl


@hookimpl
def register_channels(register: Callable[[Any], None]) -> None:
    register(OutboxChannel())
    register(SmtpChannel())
    register(TwilioChannel())
