"""blippsync: turns CRM and accounting events into timely, compliant review requests."""

from __future__ import annotations

__version__ = "0.1.0"
