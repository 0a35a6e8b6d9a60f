"""QuickBooks Online: customers and invoice_paid events (see docs/quickbooks.md)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from blippsync.hookspecs import hookimpl
from connectors.quickbooks.connector import QuickBooksConnector

__all__ = ["QuickBooksConnector", "register_connectors"]


@hookimpl
def register_connectors(register: Callable[[Any], None]) -> None:
    register(QuickBooksConnector())
