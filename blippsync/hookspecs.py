"""The plugin hooks of blippsync (pluggy project "blippsync").

Every hook is called through pluggy by `blippsync.plugins.Plugins`, the only code that
calls them, with keyword arguments: an implementation may accept any subset of a hook's
parameters, so a hook can gain a parameter without breaking the plugins written before.
That is also why registration hooks receive a `register` callback instead of returning
lists. Each plugin's implementation runs on its own: one plugin's exception is reported
(in `blippsync connectors` and the log) and the other plugins still run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

    from blippsync.channels import Channel
    from blippsync.config import Config
    from blippsync.connector import Connector
    from blippsync.sync_summary import SyncSummary

hookspec = pluggy.HookspecMarker("blippsync")
hookimpl = pluggy.HookimplMarker("blippsync")

# ---------------------------------------------------------------------------------------
# Registration hooks: called once each, when `load_plugins()` runs, before any work.
# ---------------------------------------------------------------------------------------


@hookspec
def register_connectors(register: Callable[[Connector], None]) -> None:
    """Register the connectors this plugin provides.

    Called once, while plugins load.

    :param register: call `register(connector)` once per connector, with an object
        satisfying `blippsync.connector.Connector` (plus `OAuthConnector` when it sets
        `needs_oauth`, optionally `WebhookConnector`). A connector that does not satisfy
        the protocol, or whose name is not lower-case letters, digits and `_`, is refused
        and reported.

    Precedence: a connector name belongs to the first plugin that registers it. Plugins
    are asked in a fixed order that does not depend on `sys.path`: the connectors built
    into blippsync first, then installed plugins sorted by distribution name, then by
    entry-point name. A later registration of a taken name is refused and reported, so an
    installed package can never replace a built-in connector.

    :return: nothing; the return value is ignored.
    """


@hookspec
def register_channels(register: Callable[[Channel], None]) -> None:
    """Register the delivery channels (email, SMS...) this plugin provides.

    Called once, while plugins load, after `register_connectors`.

    :param register: call `register(channel)` once per channel, with an object satisfying
        `blippsync.channels.Channel`. Names are unique with the same precedence as
        connectors (the first registration wins, later ones are reported).

    :return: nothing; the return value is ignored.
    """


@hookspec
def register_commands(cli: click.Group, connect: click.Group, disconnect: click.Group) -> None:
    """Add this plugin's click commands to the command line.

    Called once per process, the first time the command line resolves or lists its
    commands (so `--help` shows them).

    :param cli: the root `blippsync` group: `cli.add_command(command)`.
    :param connect: the `blippsync connect` group, for a connector's OAuth consent flow
        (`connect.add_command(command)`; see `blippsync.cli.connect.oauth_connect`).
    :param disconnect: the `blippsync disconnect` group.

    :return: nothing; the return value is ignored.
    """


# ---------------------------------------------------------------------------------------
# Observers: called after the fact; their return values are ignored and their
# exceptions are logged and reported, never propagated.
# ---------------------------------------------------------------------------------------


@hookspec
def sync_finished(summary: SyncSummary) -> None:
    """A connection finished a sync pass (run-once, the daemon, or `blippsync sync`).

    Called after the pass's last batch is committed, in the process that ran it; not for
    dry runs, nor for a pass skipped because another process holds the connection.

    :param summary: what the pass did: `summary.ok`, `summary.error`, `summary.counts`,
        `summary.connector`, `summary.business_id`, `summary.run_id`...

    :return: nothing; the return value is ignored.
    """


# ---------------------------------------------------------------------------------------
# Sources: asked for what the plugin learned elsewhere; exceptions are logged and
# reported, never propagated.
# ---------------------------------------------------------------------------------------


@hookspec
def collect_delivery_reports(config: Config, report: Callable[..., bool]) -> None:
    """Report delivery outcomes learned outside blippsync: SMTP bounces read from a
    mailbox, an email provider's event feed...

    Called before each pass over due journey steps (run-once and the daemon), in the
    process running it.

    :param config: the deployment's `blippsync.config.Config`.
    :param report: call `report(provider_id=..., status=..., error_code=None, error=None)`
        once per outcome: `status` is delivered, undelivered or failed; `provider_id` is
        what the channel returned when it sent the message (the smtp channel: the
        Message-ID). Only a message still `sent` (or `unknown`) changes; `report` returns
        whether one did.

    :return: nothing; the return value is ignored.
    """
