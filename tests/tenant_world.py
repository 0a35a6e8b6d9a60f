"""A seeded two-tenant database for the isolation tests, built from the catalog.

The tables are discovered from pg_class, and rows are seeded generically from the catalog
(foreign keys point at the same business's rows, enumerated columns take a value their
CHECK lists), so a table added by a later migration is covered without editing the tests.
The people: owner_a (created_by of A), admin_a and member_a (profiles of A), owner_b,
and users who must reach nothing: phone_user (GoTrue's "email": ""), unconfirmed (claims
owner_a's address without having confirmed it); plus anon.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy.engine import make_url

# Tables holding no tenant data: readable by signed-in users, written by the service only.
GLOBAL_TABLES = {"customer_sources"}

@dataclass(frozen=True)
class Actor:
    name: str
    role: str
    claims: dict[str, Any]


@dataclass
class World:
    """The seeded database: two businesses, three users, one row per tenant table each."""

    conn: psycopg.Connection
    business: dict[str, uuid.UUID]          # "A"/"B" -> businesses.id
    users: dict[str, uuid.UUID]             # owner_a, owner_b, member_a -> auth.users.id
    tables: list[str]                       # every table in schema public
    owner_of: dict[str, dict[tuple, str]]   # table -> primary key -> "A"/"B"
    pk: dict[str, list[str]]                # table -> primary key columns

    def rows_of(self, table: str, letter: str) -> set[tuple]:
        return {k for k, v in self.owner_of[table].items() if v == letter}


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- catalog ------------------------------------------------------------------------------

TABLES_SQL = """
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
ORDER BY c.relname
"""
_COLUMNS = """
SELECT a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.atthasdef,
       a.attidentity <> '' OR a.attgenerated <> '' AS automatic
FROM pg_attribute a
WHERE a.attrelid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
_PRIMARY_KEY = """
SELECT a.attname FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
WHERE i.indrelid = %s::regclass AND i.indisprimary
ORDER BY array_position(i.indkey::int2[], a.attnum)
"""
# foreign keys: column -> (schema.table, column); a composite same-business key
# (business_id, x) -> parent (business_id, id) counts as its column x
_FOREIGN_KEYS = """
SELECT a.attname, fn.nspname, f.relname, fa.attname
FROM pg_constraint c
CROSS JOIN LATERAL unnest(c.conkey, c.confkey) AS k(attnum, refnum)
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
JOIN pg_class f ON f.oid = c.confrelid
JOIN pg_namespace fn ON fn.oid = f.relnamespace
JOIN pg_attribute fa ON fa.attrelid = c.confrelid AND fa.attnum = k.refnum
WHERE c.conrelid = %s::regclass AND c.contype = 'f'
  AND (cardinality(c.conkey) = 1 OR a.attname <> 'business_id')
"""
_CHECKS = """
SELECT a.attname, pg_get_constraintdef(c.oid)
FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
WHERE c.conrelid = %s::regclass AND c.contype = 'c' AND cardinality(c.conkey) = 1
"""


def regclass(table: str) -> str:
    return f"public.{table}"


def columns_of(conn: psycopg.Connection, table: str) -> list[tuple]:
    return conn.execute(_COLUMNS, (regclass(table),)).fetchall()


def foreign_keys_of(conn: psycopg.Connection, table: str) -> dict[str, tuple[str, str, str]]:
    return {col: (schema, ref, refcol)
            for col, schema, ref, refcol in conn.execute(_FOREIGN_KEYS, (regclass(table),))}


def seed_order(conn: psycopg.Connection, tables: list[str]) -> list[str]:
    """Tables ordered so that every foreign key's target is seeded first."""
    deps = {t: {ref for _, (schema, ref, _) in foreign_keys_of(conn, t).items()
                if schema == "public" and ref != t} for t in tables}
    ordered: list[str] = []
    while deps:
        ready = sorted(t for t, d in deps.items() if d <= set(ordered))
        assert ready, f"foreign-key cycle among {sorted(deps)}"
        ordered += ready
        for t in ready:
            del deps[t]
    return ordered


# --- seeding ------------------------------------------------------------------------------

def _allowed_literal(check: str) -> str | None:
    """The first value an `IN (...)` / `= ANY (ARRAY[...])` check allows, if it is one."""
    if "ANY (ARRAY[" in check or re.search(r"= '[^']*'::", check):
        match = re.search(r"'([^']*)'::", check)
        return match.group(1) if match else None
    return None


def _value_for(conn: psycopg.Connection, table: str, column: str, type_: str, letter: str,
               checks: dict[str, list[str]]) -> Any:
    for check in checks.get(column, []):
        literal = _allowed_literal(check)
        if literal is not None:
            return literal
    if type_ == "uuid":
        return uuid.uuid4()
    if type_ in ("text", "character varying") or type_.startswith("character varying"):
        return f"v{letter.lower()}{uuid.uuid4().hex[:8]}"   # fits ^[a-z][a-z0-9_]*$ checks
    if type_ in ("integer", "bigint", "smallint", "numeric", "real", "double precision"):
        return 1
    if type_ == "boolean":
        return False
    if type_ == "jsonb" or type_ == "json":
        if any("'array'" in c for c in checks.get(column, [])):
            return Jsonb([])
        return Jsonb({})
    if type_.startswith("timestamp") or type_ == "date":
        return conn.execute("SELECT now()").fetchone()[0]
    raise AssertionError(f"tests/test_rls.py cannot seed {table}.{column} of type {type_}: "
                         "add a case to _value_for")


def _seed_row(conn: psycopg.Connection, table: str, letter: str, business_id: uuid.UUID,
              seeded: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    checks: dict[str, list[str]] = {}
    for col, definition in conn.execute(_CHECKS, (regclass(table),)):
        checks.setdefault(col, []).append(definition)
    parents = foreign_keys_of(conn, table)
    values: dict[str, Any] = {}
    for name, type_, notnull, hasdef, automatic in columns_of(conn, table):
        if automatic:
            continue
        if name == "business_id":
            values[name] = business_id
        elif name in parents:
            schema, ref, refcol = parents[name]
            parent_row = seeded.get((ref, letter)) if schema == "public" else None
            if parent_row is not None and ref != table:
                values[name] = parent_row[refcol]
            elif schema == "public" and ref in GLOBAL_TABLES:
                values[name] = conn.execute(sql.SQL("SELECT {} FROM {} ORDER BY 1 LIMIT 1").format(
                    sql.Identifier(refcol), sql.Identifier(schema, ref))).fetchone()[0]
            elif notnull and not hasdef:
                raise AssertionError(f"tests/test_rls.py cannot seed {table}.{name} "
                                     f"(references {schema}.{ref})")
        elif notnull and not hasdef:
            values[name] = _value_for(conn, table, name, type_, letter, checks)
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({}) RETURNING *").format(
        sql.Identifier("public", table), sql.SQL(", ").join(map(sql.Identifier, values)),
        sql.SQL(", ").join(sql.Placeholder() * len(values)))
    cur = conn.execute(query, list(values.values()))
    row = cur.fetchone()
    return dict(zip([d.name for d in cur.description], row, strict=True))


def _row_owner_query(conn: psycopg.Connection, table: str, pk: list[str]) -> sql.Composable:
    """SELECT <pk...>, <business id> FROM table: how a row belongs to a business."""
    names = {c[0] for c in columns_of(conn, table)}
    keys = sql.SQL(", ").join(sql.Identifier("t", c) for c in pk)
    target = sql.Identifier("public", table)
    if table == "businesses":
        return sql.SQL("SELECT {}, t.id FROM {} t").format(keys, target)
    if "business_id" in names:
        return sql.SQL("SELECT {}, t.business_id FROM {} t").format(keys, target)
    if "sequence_id" in names:
        return sql.SQL("SELECT {}, s.business_id FROM {} t JOIN public.sequences s "
                       "ON s.id = t.sequence_id").format(keys, target)
    raise AssertionError(f"public.{table} has neither business_id nor sequence_id: scope it to a "
                         "business, or list it in GLOBAL_TABLES in tests/test_rls.py")


# Businesses: A and B have users; E was created with an empty created_by (GoTrue's
# "email": "" of phone sign-ins), U by an address nobody confirmed.
LETTERS = ("A", "B", "E", "U")
CREATED_BY = {"A": "OWNER_A@Example.test", "B": "owner_b@example.test", "E": "",
              "U": "unconfirmed@example.test"}
# user -> (email in auth.users, confirmed, the JWT's email claim)
USERS = {
    "owner_a": ("owner_a@example.test", True, "owner_a@example.test"),
    "admin_a": ("admin_a@example.test", True, "admin_a@example.test"),
    "member_a": ("member_a@example.test", True, "member_a@example.test"),
    "owner_b": ("owner_b@example.test", True, "owner_b@example.test"),
    "phone_user": (None, True, ""),
    "unconfirmed": ("unconfirmed@example.test", False, "unconfirmed@example.test"),
}
PROFILES = (("member_a", "A", "member"), ("admin_a", "A", "admin"), ("owner_b", "B", "owner"))


def build_world(database_url: str, auth_url: str | None = None) -> Iterator[World]:
    """Seed as the given (RLS-bypassing) connection, the users through `auth_url` (GoTrue's
    part; the same connection by default); yield the world, closed afterwards."""
    users = {name: uuid.uuid4() for name in USERS}
    with psycopg.connect(libpq(auth_url or database_url), autocommit=True) as auth:
        for name, (email, confirmed, _claim) in USERS.items():
            auth.execute("INSERT INTO auth.users (id, email, email_confirmed_at) VALUES "
                         "(%s, %s, CASE WHEN %s THEN now() END)", (users[name], email, confirmed))
    conn = psycopg.connect(libpq(database_url), autocommit=True)
    business = {}
    seeded: dict[tuple[str, str], dict[str, Any]] = {}
    for letter in LETTERS:
        row = conn.execute("INSERT INTO public.businesses (name, created_by) VALUES (%s, %s) "
                           "RETURNING *", (f"Business {letter}", CREATED_BY[letter]))
        cols = [d.name for d in row.description]
        seeded[("businesses", letter)] = dict(zip(cols, row.fetchone(), strict=True))
        business[letter] = seeded[("businesses", letter)]["id"]
    for name, letter, role in PROFILES:
        conn.execute("INSERT INTO public.profiles (id, email, business_id, role) "
                     "VALUES (%s, %s, %s, %s)", (users[name], USERS[name][0], business[letter],
                                                 role))

    tables = [r[0] for r in conn.execute(TABLES_SQL)]
    pk = {t: [r[0] for r in conn.execute(_PRIMARY_KEY, (regclass(t),))] for t in tables}
    for table in seed_order(conn, tables):
        if table in GLOBAL_TABLES or table in ("businesses", "profiles"):
            continue
        for letter in LETTERS:
            seeded[(table, letter)] = _seed_row(conn, table, letter, business[letter], seeded)

    owner_of: dict[str, dict[tuple, str]] = {}
    letter_of = {v: k for k, v in business.items()}
    for table in tables:
        if table in GLOBAL_TABLES:
            continue
        assert pk[table], f"public.{table} has no primary key"
        rows = conn.execute(_row_owner_query(conn, table, pk[table])).fetchall()
        owner_of[table] = {tuple(r[:-1]): letter_of[r[-1]] for r in rows}
    try:
        yield World(conn, business, users, tables, owner_of, pk)
    finally:
        conn.close()


# --- acting as an API role ----------------------------------------------------------------

def actors(world: World) -> dict[str, Actor]:
    """Every user as GoTrue would sign them in, and anon (no user at all)."""
    found = {name: Actor(name, "authenticated", {
        "sub": str(world.users[name]), "role": "authenticated", "aud": "authenticated",
        "email": claim, "phone": "15555550100" if name == "phone_user" else "",
        "is_anonymous": False}) for name, (_email, _confirmed, claim) in USERS.items()}
    found["anon"] = Actor("anon", "anon", {"role": "anon"})
    return found


def become(conn: psycopg.Connection, actor: Actor) -> None:
    """What Supabase's API does per request, inside the transaction."""
    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(actor.role)))
    conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(actor.claims),))


def attempt(conn: psycopg.Connection, query: sql.Composable | str, params: Any = None
             ) -> tuple[str, int | str]:
    """("ok", rowcount) or ("error", SQLSTATE); the statement runs in a savepoint."""
    try:
        with conn.transaction():
            cur = conn.execute(query, params)
            return "ok", cur.rowcount
    except psycopg.Error as exc:
        return "error", exc.sqlstate or "?"


def visible(conn: psycopg.Connection, world: World, table: str) -> set[tuple]:
    keys = sql.SQL(", ").join(map(sql.Identifier, world.pk[table]))
    return {tuple(r) for r in conn.execute(sql.SQL("SELECT {} FROM {}").format(
        keys, sql.Identifier("public", table)))}


def fingerprint(conn: psycopg.Connection, table: str) -> str:
    return conn.execute(sql.SQL("SELECT md5(coalesce(string_agg(to_jsonb(t)::text, '|' "
                                "ORDER BY to_jsonb(t)::text), '')) FROM {} t").format(
        sql.Identifier("public", table))).fetchone()[0]


def pk_match(world: World, table: str, keys: set[tuple]) -> tuple[sql.Composable, list[Any]]:
    """A WHERE clause matching exactly these primary keys."""
    cols = world.pk[table]
    one = sql.SQL("({})").format(sql.SQL(" AND ").join(
        sql.SQL("{} = %s").format(sql.Identifier(c)) for c in cols))
    clause = sql.SQL(" OR ").join([one] * len(keys))
    return clause, [v for key in sorted(keys, key=str) for v in key]


def row_json(world: World, table: str, key: tuple) -> dict[str, Any]:
    """One seeded row as JSON (read through the world's RLS-bypassing connection)."""
    clause, params = pk_match(world, table, {key})
    return world.conn.execute(sql.SQL("SELECT to_jsonb(t) FROM {} t WHERE {}").format(
        sql.Identifier("public", table), clause), params).fetchone()[0]


def insert_json(table: str, row: dict[str, Any]) -> tuple[sql.Composable, tuple[str]]:
    """INSERT of exactly `row`'s columns (leave out `id` for a fresh one)."""
    columns = sql.SQL(", ").join(map(sql.Identifier, row))
    return sql.SQL("INSERT INTO {0} ({1}) SELECT {1} FROM jsonb_populate_record(NULL::{0}, "
                   "%s::jsonb)").format(sql.Identifier("public", table), columns), (
        json.dumps(row, default=str),)


def without_id(world: World, table: str, row: dict[str, Any]) -> dict[str, Any]:
    """The row as a new one: its generated id left to the database."""
    return {k: v for k, v in row.items() if k != "id"} if world.pk[table] == ["id"] else row


def tenant_tables(world: World) -> list[str]:
    return [t for t in world.tables if t not in GLOBAL_TABLES]


