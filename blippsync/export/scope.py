"""The SELECT that finds one table's rows of a business, composed with psycopg.sql
(identifiers quoted by the driver, the business id always a bound parameter)."""

from __future__ import annotations

from psycopg import sql

from blippsync.export.tables import TenantTable


def _ident(*names: str) -> sql.Identifier:
    return sql.Identifier(*names)


def where(table: TenantTable, tables: dict[str, TenantTable], alias: str = "t"
          ) -> sql.Composable:
    """A condition on `alias` true for the business's rows (%(business)s)."""
    if table.kind == "root":
        return sql.SQL("{}.id = %(business)s").format(_ident(alias))
    if table.kind == "owned":
        return sql.SQL("{}.business_id = %(business)s").format(_ident(alias))
    if table.kind == "reference":
        return sql.SQL("true")
    assert table.via is not None and table.parent is not None
    parent = tables[table.parent]
    inner = f"{alias}_p"
    return sql.SQL("{col} IN (SELECT {pcol} FROM public.{parent} AS {inner} WHERE {cond})").format(
        col=_ident(alias, table.via.columns[0]), pcol=_ident(inner, table.via.ref_columns[0]),
        parent=_ident(parent.name), inner=_ident(inner),
        cond=where(parent, tables, inner))


def select_rows(table: TenantTable, tables: dict[str, TenantTable]) -> sql.Composable:
    """The exported columns of the business's rows, in key order (stable across databases)."""
    return sql.SQL("SELECT {cols} FROM public.{table} AS t WHERE {cond} ORDER BY {key}").format(
        cols=sql.SQL(", ").join(_ident("t", c) for c in table.columns),
        table=_ident(table.name), cond=where(table, tables),
        key=sql.SQL(", ").join(_ident("t", c) for c in table.key))
