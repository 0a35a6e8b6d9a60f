"""The built-in Jobber connector (GraphQL, cost-throttled, rotating OAuth tokens).

Registered through the `blippsync` entry-point group like any third-party plugin.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from blippsync.connector import Connector
from blippsync.hookspecs import hookimpl
from connectors.jobber.connector import JobberConnector, account_info, app_disconnect

__all__ = ["JobberConnector", "account_info", "app_disconnect", "register_commands",
           "register_connectors"]


@hookimpl
def register_connectors(register: Callable[[Connector], None]) -> None:
    register(JobberConnector())


@hookimpl
def register_commands(connect: click.Group, disconnect: click.Group) -> None:
    from connectors.jobber.commands import connect_jobber, disconnect_jobber

    connect.add_command(connect_jobber)
    disconnect.add_command(disconnect_jobber)
