"""QuickBooks Online: customers and invoice_paid events (see docs/quickbooks.md)."""

from __future__ import annotations

from collections.abc import Callable

import click

from blippsync.connector import Connector
from blippsync.hookspecs import hookimpl
from connectors.quickbooks.connector import QuickBooksConnector

__all__ = ["QuickBooksConnector", "register_commands", "register_connectors"]


@hookimpl
def register_connectors(register: Callable[[Connector], None]) -> None:
    register(QuickBooksConnector())


@hookimpl
def register_commands(connect: click.Group, disconnect: click.Group) -> None:
    from connectors.quickbooks.commands import connect_quickbooks, disconnect_quickbooks

    connect.add_command(connect_quickbooks)
    disconnect.add_command(disconnect_quickbooks)
