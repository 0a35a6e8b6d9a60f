"""The built-in Jobber connector (GraphQL, cost-throttled, rotating OAuth tokens).

Registered through the `blippsync` entry-point group like any third-party plugin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from blippsync.hookspecs import hookimpl
from connectors.jobber.connector import JobberConnector, account_info, app_disconnect

__all__ = ["JobberConnector", "account_info", "app_disconnect", "register_connectors"]


@hookimpl
def register_connectors(register: Callable[[Any], None]) -> None:
    register(JobberConnector())
