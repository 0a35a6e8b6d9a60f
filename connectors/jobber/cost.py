"""Estimating a query's requested cost the way Jobber's docs describe it.

Each scalar field costs 1; `edges`, `nodes`, `node` and fields that only group others
cost nothing themselves (the docs' single `quote` with 7 fields costs 7); a connection
costs `first` (100 when omitted) times what is asked per item, plus its `pageInfo`.
Used to size pages before Jobber has reported a real `requestedQueryCost`, and by the
test fake to charge its bucket.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ITEM_FIELDS = frozenset({"edges", "nodes"})
DEFAULT_CONNECTION_SIZE = 100
_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|#[^\n]*|-?\d+(?:\.\d+)?|\$?[A-Za-z_]\w*|\S')


@dataclass
class _Field:
    name: str
    first: int | None = None
    children: list[_Field] = field(default_factory=list)
    has_selection: bool = False


def query_cost(query: str, variables: Mapping[str, Any] | None = None) -> int:
    """Requested cost of the first operation in `query` (no fragments: we use none)."""
    tokens = [t for t in _TOKEN.findall(query) if not t.startswith("#")]
    if "{" not in tokens:
        return 0
    root, _ = _selection(tokens, tokens.index("{") + 1, variables or {})
    return sum(_cost(f) for f in root)


def _cost(f: _Field) -> int:
    if not f.has_selection:
        return 1
    names = {c.name for c in f.children}
    if f.first is not None or names & ITEM_FIELDS:
        size = f.first if f.first is not None else DEFAULT_CONNECTION_SIZE
        per_item = sum(_cost(c) for c in f.children if c.name in ITEM_FIELDS)
        rest = sum(_cost(c) for c in f.children if c.name not in ITEM_FIELDS)
        return size * per_item + rest
    return sum(_cost(c) for c in f.children)


def _selection(tokens: list[str], i: int, variables: Mapping[str, Any]
               ) -> tuple[list[_Field], int]:
    fields: list[_Field] = []
    while i < len(tokens) and tokens[i] != "}":
        f = _Field(tokens[i])
        i += 1
        if i < len(tokens) and tokens[i] == ":":  # alias: the real name follows
            f.name = tokens[i + 1]
            i += 2
        if i < len(tokens) and tokens[i] == "(":
            f.first, i = _arguments(tokens, i + 1, variables)
        if i < len(tokens) and tokens[i] == "{":
            f.children, i = _selection(tokens, i + 1, variables)
            f.has_selection = True
        fields.append(f)
    return fields, i + 1


def _arguments(tokens: list[str], i: int, variables: Mapping[str, Any]) -> tuple[int | None, int]:
    first, depth = None, 1
    while i < len(tokens) and depth:
        t = tokens[i]
        if t in ("(", "{", "["):
            depth += 1
        elif t in (")", "}", "]"):
            depth -= 1
        elif depth == 1 and t in ("first", "last") and tokens[i + 1] == ":":
            value: Any = tokens[i + 2]
            if value.startswith("$"):
                value = variables.get(value[1:])
            try:
                first = int(value) if value is not None else None
            except (TypeError, ValueError):
                first = None
        i += 1
    return first, i
