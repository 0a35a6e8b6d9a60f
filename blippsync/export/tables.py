"""Which tables hold a business's data, found in the catalog rather than listed by hand,
so a table another change adds is exported too without touching this code.

The rules, in order:

1. `businesses`: the business's own row (the root).
2. Owned: every table of schema `public` with a `business_id` column; its rows with that
   business id.
3. Children: a table without `business_id` that has a foreign key to an owned or child
   table (`sequence_steps` through `sequences`); its rows whose key points at the
   business's rows. Found repeatedly, so grandchildren count too.
4. Reference data: a table none of the above that a tenant table references
   (`customer_sources`): exported whole, restored where missing, so a plugin's source
   name travels with the customers that use it.
5. Skipped, with the reason in the manifest: a tenant table with a foreign key into
   another schema (`profiles` -> `auth.users`): its rows belong to the identity provider.

Secret columns are never exported: a column of a text-like type whose name has a word
`token`, `secret`, `password`, `credential(s)`, `api_key` or `private_key` (OAuth tokens,
plugin credentials, review-link tokens). Timestamps such as `token_expires_at` stay.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

SECRET_NAME = re.compile(r"(^|_)(token|tokens|secret|secrets|password|passwords|credential|"
                         r"credentials|api_key|private_key)(_|$)")
TEXT_LIKE_TYPES = frozenset({"text", "character varying", "character", "bytea", "json", "jsonb"})
# Text columns that embed a row id: "<enrollment id>:<step order>". Remapped with the ids.
EMBEDDED_ID_COLUMNS = {("review_requests", "send_key")}

_COLUMNS = sa.text("""
SELECT c.relname AS table_name, a.attname AS column_name,
       format_type(a.atttypid, NULL) AS type_name, a.attgenerated <> '' AS generated
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND a.attnum > 0
  AND NOT a.attisdropped AND NOT c.relispartition
ORDER BY c.relname, a.attnum
""")
_CONSTRAINTS = sa.text("""
SELECT con.contype, c.relname AS table_name, rn.nspname AS ref_schema,
       rc.relname AS ref_table,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k(num, i)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.num
             ORDER BY k.i) AS columns,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY AS k(num, i)
             JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.num
             ORDER BY k.i) AS ref_columns
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class rc ON rc.oid = con.confrelid
LEFT JOIN pg_namespace rn ON rn.oid = rc.relnamespace
WHERE n.nspname = 'public' AND con.contype IN ('p', 'f')
ORDER BY c.relname, con.conname
""")


@dataclass(frozen=True)
class ForeignKey:
    columns: tuple[str, ...]
    ref_schema: str
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass
class TenantTable:
    """One table of the export and how its rows are found."""

    name: str
    kind: str                       # root | owned | child | reference
    columns: list[str]              # exported, in table order
    types: dict[str, str]
    key: list[str]                  # ordering of the rows (primary key, else every column)
    excluded: list[str] = field(default_factory=list)   # secret columns left out
    via: ForeignKey | None = None   # child: the foreign key leading to its parent
    parent: str | None = None
    foreign_keys: list[ForeignKey] = field(default_factory=list)

    @property
    def uuid_columns(self) -> list[str]:
        return [c for c in self.columns if self.types[c] == "uuid"]


@dataclass(frozen=True)
class Skipped:
    name: str
    why: str


def is_secret(column: str, type_name: str) -> bool:
    return type_name in TEXT_LIKE_TYPES and SECRET_NAME.search(column.lower()) is not None


def discover(conn: Connection) -> tuple[list[TenantTable], list[Skipped]]:
    """The export's tables, parents before children (the order a restore inserts them)."""
    columns: dict[str, list[tuple[str, str, bool]]] = {}
    for row in conn.execute(_COLUMNS):
        columns.setdefault(row.table_name, []).append(
            (row.column_name, row.type_name, row.generated))
    keys: dict[str, list[str]] = {}
    fks: dict[str, list[ForeignKey]] = {}
    for row in conn.execute(_CONSTRAINTS):
        if row.contype == "p":
            keys[row.table_name] = list(row.columns)
        else:
            fks.setdefault(row.table_name, []).append(ForeignKey(
                tuple(row.columns), row.ref_schema, row.ref_table, tuple(row.ref_columns)))

    def table(name: str, kind: str) -> TenantTable:
        cols = [(c, t) for c, t, generated in columns[name] if not generated]
        kept = [c for c, t in cols if not is_secret(c, t)]
        return TenantTable(name=name, kind=kind, columns=kept, types=dict(cols),
                           key=keys.get(name) or kept,
                           excluded=[c for c, t in cols if is_secret(c, t)],
                           foreign_keys=fks.get(name, []))

    found: dict[str, TenantTable] = {}
    skipped: list[Skipped] = []

    def outside(name: str) -> ForeignKey | None:
        return next((fk for fk in fks.get(name, []) if fk.ref_schema != "public"), None)

    if "businesses" in columns:
        found["businesses"] = table("businesses", "root")
    for name, cols in sorted(columns.items()):
        if name == "businesses" or "business_id" not in {c for c, _t, _g in cols}:
            continue
        foreign = outside(name)
        if foreign is not None:
            skipped.append(Skipped(name, f"references {foreign.ref_schema}.{foreign.ref_table}: "
                                         "its rows belong to the identity provider"))
            continue
        found[name] = table(name, "owned")
    grew = True
    while grew:
        grew = False
        for name in sorted(columns):
            if name in found or any(s.name == name for s in skipped):
                continue
            links = sorted((fk for fk in fks.get(name, [])
                            if fk.ref_schema == "public" and fk.ref_table in found
                            and fk.ref_table != name and len(fk.columns) == 1),
                           key=lambda fk: fk.columns)
            if links and outside(name) is None:
                child = table(name, "child")
                child.via, child.parent = links[0], links[0].ref_table
                found[name] = child
                grew = True
    for name in sorted(columns):
        if name in found:
            continue
        if any(fk.ref_schema == "public" and fk.ref_table == name
               for t in found.values() for fk in t.foreign_keys):
            found[name] = table(name, "reference")
    return _parents_first(found), skipped


def _parents_first(tables: dict[str, TenantTable]) -> list[TenantTable]:
    """A topological order over the foreign keys between exported tables (self-references
    are fine inside one statement); a cycle keeps the names' order for its members."""
    order: list[TenantTable] = []
    placed: set[str] = set()
    rank = {"reference": 0, "root": 1, "owned": 2, "child": 3}
    pending = sorted(tables.values(), key=lambda t: (rank[t.kind], t.name))
    while pending:
        progress = False
        for t in list(pending):
            needs = {fk.ref_table for fk in t.foreign_keys
                     if fk.ref_schema == "public" and fk.ref_table in tables
                     and fk.ref_table != t.name}
            if needs <= placed:
                order.append(t)
                placed.add(t.name)
                pending.remove(t)
                progress = True
        if not progress:  # a cycle between tables: restore inserts them in this order
            t = pending.pop(0)
            order.append(t)
            placed.add(t.name)
    return order
