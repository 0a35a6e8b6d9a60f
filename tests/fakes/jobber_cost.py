"""Jobber's query-cost rules, written from its documentation (api/jobber.md, "Query-cost
leaky bucket") for the fake to charge its bucket, independently of the connector's own
estimate (connectors/jobber/cost.py): the query is parsed by graphql-core, not by the
connector's tokenizer.

The documented rules: every field costs 1, except `edges`, `nodes` and `node`, which cost
nothing; a field that only groups others costs what they cost (a single `quote` with 7
fields costs 7); a connection costs `first` (or `last`; 100 when neither is given) times
what is requested per item, and nested connections multiply.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphql import (
    FieldNode,
    OperationDefinitionNode,
    SelectionSetNode,
    parse,
    value_from_ast_untyped,
)

FREE_FIELDS = frozenset({"edges", "nodes", "node"})
ITEM_CONTAINERS = frozenset({"edges", "nodes"})
UNSIZED_CONNECTION = 100


def requested_cost(query: str, variables: Mapping[str, Any] | None = None) -> int:
    """What Jobber would report as `requestedQueryCost` for the query's first operation."""
    operation = next(d for d in parse(query).definitions
                     if isinstance(d, OperationDefinitionNode))
    return _selection_cost(operation.selection_set, dict(variables or {}))


def _selection_cost(selection: SelectionSetNode | None, variables: dict[str, Any]) -> int:
    if selection is None:
        return 0
    return sum(_field_cost(f, variables) for f in selection.selections
               if isinstance(f, FieldNode))


def _field_cost(f: FieldNode, variables: dict[str, Any]) -> int:
    if f.selection_set is None:
        return 0 if f.name.value in FREE_FIELDS else 1
    size = _page_size(f, variables)
    children = [c for c in f.selection_set.selections if isinstance(c, FieldNode)]
    is_connection = size is not None or any(c.name.value in ITEM_CONTAINERS for c in children)
    if not is_connection:
        return _selection_cost(f.selection_set, variables)
    per_item = sum(_field_cost(c, variables) for c in children
                   if c.name.value in ITEM_CONTAINERS)
    once = sum(_field_cost(c, variables) for c in children
               if c.name.value not in ITEM_CONTAINERS)
    return (size if size is not None else UNSIZED_CONNECTION) * per_item + once


def _page_size(f: FieldNode, variables: dict[str, Any]) -> int | None:
    for argument in f.arguments or ():
        if argument.name.value in ("first", "last"):
            value = value_from_ast_untyped(argument.value, variables)
            return int(value) if value is not None else None
    return None


def root_field(query: str) -> str:
    """The name of the first operation's first field (`clients`, `account`...)."""
    operation = next(d for d in parse(query).definitions
                     if isinstance(d, OperationDefinitionNode))
    first = next(f for f in operation.selection_set.selections if isinstance(f, FieldNode))
    return first.name.value
