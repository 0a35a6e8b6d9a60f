"""Escaping cells for anyone writing CSV back out (formula injection, CWE-1236).

We store cells exactly as given: `+15551234567` is a phone number and `-` a harmless
note. The danger is only on output, when a spreadsheet would run `=HYPERLINK(...)`,
so escaping happens there, with this one helper.
"""

from __future__ import annotations

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value: str) -> str:
    """`value` made safe for a CSV cell a spreadsheet may open: a leading =, +, -, @, tab
    or carriage return gets a single quote in front, so it is shown as text, never run."""
    if value.startswith(FORMULA_PREFIXES):
        return "'" + value
    return value
