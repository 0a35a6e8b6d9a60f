"""The plugin hooks of blippsync (pluggy project "blippsync").

Registration hooks receive a `register` callback instead of returning lists, so a
call can grow keyword arguments later without breaking plugins. Only
`blippsync.plugins` calls these hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("blippsync")
hookimpl = pluggy.HookimplMarker("blippsync")

# ---------------------------------------------------------------------------------------
# Registration
# ---------------------------------------------------------------------------------------


@hookspec
def register_connectors(register: Callable[[Any], None]) -> None:
    """Called once at start-up. Call `register(connector)` for each connector the plugin
    provides (an object satisfying `blippsync.connector.Connector`). Names must be unique
    across all plugins; a duplicate is reported and the first one kept."""


@hookspec
def register_channels(register: Callable[[Any], None]) -> None:
    """Called once at start-up. Call `register(channel)` for each delivery channel (email,
    sms...) the plugin provides (an object satisfying `blippsync.channels.Channel`)."""


@hookspec
def register_commands(cli: Any) -> None:
    """Called while the command line is built: add click commands to the `cli` group."""


# ---------------------------------------------------------------------------------------
# Observers: called after the fact; their return values are ignored and their
# exceptions are logged, never propagated.
# ---------------------------------------------------------------------------------------


@hookspec
def sync_finished(summary: Any) -> None:
    """A connection finished a sync pass. `summary` is a `blippsync.sync_summary.SyncSummary`."""


@hookspec
def collect_delivery_reports(config: Any, report: Callable[..., bool]) -> None:
    """Called before each pass over due journey steps. Call `report(provider_id=...,
    status=..., error_code=None, error=None)` for every delivery outcome learned since the
    last call: SMTP bounces read from a mailbox, an email provider's event feed... `status`
    is delivered, undelivered or failed; `provider_id` is what the channel returned when
    sending (the smtp channel: the Message-ID). `report` returns whether a message changed.
    Exceptions are logged, never propagated."""
