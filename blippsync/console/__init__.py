"""The operator console: read-only web pages over the database (overview of connections
and queues, a business, a customer's story, search), server-rendered with Jinja2 and
inline SVG charts. Off unless `console.enabled`; see docs/console.md."""

from __future__ import annotations

from blippsync.console.app import build_console, check_console, console_mount, standalone_app

__all__ = ["build_console", "check_console", "console_mount", "standalone_app"]
