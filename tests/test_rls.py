"""Row-level security over every table of schema public, as Supabase's API roles see it.

The tables are discovered from pg_class, and rows are seeded generically from the catalog
(foreign keys point at the same business's rows, enumerated columns take a value their
CHECK lists), so a table added by a later migration is covered without editing this file.
A table without FORCE RLS, without a policy, or that cannot be classified or seeded fails.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb
from sqlalchemy.engine import make_url

from blippsync.testing.database import fresh_database

# Tables holding no tenant data: readable by signed-in users, written by the service only.
GLOBAL_TABLES = {"customer_sources"}
# Written by the daemon (a BYPASSRLS role) only; the business's users may read them.
DAEMON_TABLES = {"connections", "sync_runs", "customer_identities", "trigger_events"}
INSUFFICIENT_PRIVILEGE = "42501"  # RLS WITH CHECK failures and missing privileges alike
FOREIGN_KEY_VIOLATION = "23503"  # a same-business key refusing a reference across tenants
# touched nothing, or failed
REFUSED = (("ok", 0), ("error", INSUFFICIENT_PRIVILEGE), ("error", FOREIGN_KEY_VIOLATION))


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


def _libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


# --- catalog ------------------------------------------------------------------------------

_TABLES = """
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


def _regclass(table: str) -> str:
    return f"public.{table}"


def _columns(conn: psycopg.Connection, table: str) -> list[tuple]:
    return conn.execute(_COLUMNS, (_regclass(table),)).fetchall()


def _parents(conn: psycopg.Connection, table: str) -> dict[str, tuple[str, str, str]]:
    return {col: (schema, ref, refcol)
            for col, schema, ref, refcol in conn.execute(_FOREIGN_KEYS, (_regclass(table),))}


def _seed_order(conn: psycopg.Connection, tables: list[str]) -> list[str]:
    """Tables ordered so that every foreign key's target is seeded first."""
    deps = {t: {ref for _, (schema, ref, _) in _parents(conn, t).items()
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
    for col, definition in conn.execute(_CHECKS, (_regclass(table),)):
        checks.setdefault(col, []).append(definition)
    parents = _parents(conn, table)
    values: dict[str, Any] = {}
    for name, type_, notnull, hasdef, automatic in _columns(conn, table):
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
    names = {c[0] for c in _columns(conn, table)}
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


@pytest.fixture(scope="module")
def world(pg_server_url: str) -> Iterator[World]:
    """Seeded once per module: every test acts inside a transaction it rolls back."""
    with fresh_database(pg_server_url) as database_url:
        yield from _build_world(database_url)


def _build_world(database_url: str) -> Iterator[World]:
    conn = psycopg.connect(_libpq(database_url), autocommit=True)
    users = {name: uuid.uuid4() for name in ("owner_a", "owner_b", "member_a")}
    for name, user_id in users.items():
        conn.execute("INSERT INTO auth.users (id, email, email_confirmed_at) VALUES (%s, %s, now())",
                     (user_id, f"{name}@example.test"))
    business = {}
    seeded: dict[tuple[str, str], dict[str, Any]] = {}
    for letter, owner in (("A", "owner_a"), ("B", "owner_b")):
        row = conn.execute("INSERT INTO public.businesses (name, created_by) VALUES (%s, %s) "
                           "RETURNING *", (f"Business {letter}", f"{owner.upper()}@Example.test"))
        cols = [d.name for d in row.description]
        seeded[("businesses", letter)] = dict(zip(cols, row.fetchone(), strict=True))
        business[letter] = seeded[("businesses", letter)]["id"]
    conn.execute("INSERT INTO public.profiles (id, email, business_id, role) VALUES "
                 "(%s, 'member_a@example.test', %s, 'member'), "
                 "(%s, 'owner_b@example.test', %s, 'owner')",
                 (users["member_a"], business["A"], users["owner_b"], business["B"]))

    tables = [r[0] for r in conn.execute(_TABLES)]
    pk = {t: [r[0] for r in conn.execute(_PRIMARY_KEY, (_regclass(t),))] for t in tables}
    for table in _seed_order(conn, tables):
        if table in GLOBAL_TABLES or table in ("businesses", "profiles"):
            continue
        for letter in ("A", "B"):
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

def _actors(world: World) -> dict[str, Actor]:
    def user(name: str) -> Actor:
        return Actor(name, "authenticated", {"sub": str(world.users[name]), "role":
                                             "authenticated", "email": f"{name}@example.test"})
    return {"owner_a": user("owner_a"), "owner_b": user("owner_b"), "member_a": user("member_a"),
            "anon": Actor("anon", "anon", {"role": "anon"})}


def _become(conn: psycopg.Connection, actor: Actor) -> None:
    """What Supabase's API does per request, inside the transaction."""
    conn.execute(sql.SQL("SET LOCAL ROLE {}").format(sql.Identifier(actor.role)))
    conn.execute("SELECT set_config('request.jwt.claims', %s, true)", (json.dumps(actor.claims),))


def _attempt(conn: psycopg.Connection, query: sql.Composable | str, params: Any = None
             ) -> tuple[str, int | str]:
    """("ok", rowcount) or ("error", SQLSTATE); the statement runs in a savepoint."""
    try:
        with conn.transaction():
            cur = conn.execute(query, params)
            return "ok", cur.rowcount
    except psycopg.Error as exc:
        return "error", exc.sqlstate or "?"


def _visible(conn: psycopg.Connection, world: World, table: str) -> set[tuple]:
    keys = sql.SQL(", ").join(map(sql.Identifier, world.pk[table]))
    return {tuple(r) for r in conn.execute(sql.SQL("SELECT {} FROM {}").format(
        keys, sql.Identifier("public", table)))}


def _fingerprint(conn: psycopg.Connection, table: str) -> str:
    return conn.execute(sql.SQL("SELECT md5(coalesce(string_agg(to_jsonb(t)::text, '|' "
                                "ORDER BY to_jsonb(t)::text), '')) FROM {} t").format(
        sql.Identifier("public", table))).fetchone()[0]


def _pk_match(world: World, table: str, keys: set[tuple]) -> tuple[sql.Composable, list[Any]]:
    """A WHERE clause matching exactly these primary keys."""
    cols = world.pk[table]
    one = sql.SQL("({})").format(sql.SQL(" AND ").join(
        sql.SQL("{} = %s").format(sql.Identifier(c)) for c in cols))
    clause = sql.SQL(" OR ").join([one] * len(keys))
    return clause, [v for key in sorted(keys, key=str) for v in key]


def _tenant_tables(world: World) -> list[str]:
    return [t for t in world.tables if t not in GLOBAL_TABLES]


# --- the matrix ---------------------------------------------------------------------------

def test_every_public_table_forces_rls_and_has_a_policy(world: World) -> None:
    rows = world.conn.execute(_TABLES).fetchall()
    assert len(rows) >= 18
    bad = [f"{name} (enabled={enabled}, forced={forced}, policies={policies})"
           for name, enabled, forced, policies in rows if not (enabled and forced and policies)]
    assert bad == [], "tables without forced RLS or without a policy: " + ", ".join(bad)


def test_every_tenant_table_is_seeded_for_both_businesses(world: World) -> None:
    for table in _tenant_tables(world):
        assert world.rows_of(table, "A") and world.rows_of(table, "B"), table


@pytest.mark.parametrize("who, letter", [("owner_a", "A"), ("member_a", "A"), ("owner_b", "B")])
def test_users_see_exactly_their_business_rows(world: World, who: str, letter: str) -> None:
    actor = _actors(world)[who]
    conn = world.conn
    with conn.transaction(force_rollback=True):
        _become(conn, actor)
        for table in _tenant_tables(world):
            seen = _visible(conn, world, table)
            if table == "profiles":
                # a profile is visible only to its own user
                own = {(world.users[who],)} & set(world.owner_of["profiles"])
                assert seen == own, (who, table)
                continue
            assert seen == world.rows_of(table, letter), (who, table)
        for table in GLOBAL_TABLES & set(world.tables):
            assert _visible(conn, world, table), f"{table} should be readable by {who}"


def test_anon_sees_nothing_and_writes_nothing(world: World) -> None:
    conn = world.conn
    for table in world.tables:
        with conn.transaction(force_rollback=True):
            before = _fingerprint(conn, table)
            _become(conn, _actors(world)["anon"])
            try:
                with conn.transaction():
                    assert _visible(conn, world, table) == set(), table
            except psycopg.errors.InsufficientPrivilege:
                pass  # anon holds no privilege at all: sees nothing either
            assert _attempt(conn, sql.SQL("DELETE FROM {}").format(
                sql.Identifier("public", table))) in (("ok", 0), ("error", INSUFFICIENT_PRIVILEGE))
            conn.execute("RESET ROLE")
            assert _fingerprint(conn, table) == before, table


def _row_json(conn: psycopg.Connection, world: World, table: str, key: tuple) -> dict[str, Any]:
    clause, params = _pk_match(world, table, {key})
    return conn.execute(sql.SQL("SELECT to_jsonb(t) FROM {} t WHERE {}").format(
        sql.Identifier("public", table), clause), params).fetchone()[0]


def _insert_json(table: str) -> sql.Composable:
    return sql.SQL("INSERT INTO {0} SELECT * FROM jsonb_populate_record(NULL::{0}, %s::jsonb)"
                   ).format(sql.Identifier("public", table))


@pytest.mark.parametrize("who", ["owner_a", "member_a"])
def test_writes_aimed_at_business_b_fail_or_touch_nothing(world: World, who: str) -> None:
    conn = world.conn
    actor = _actors(world)[who]
    for table in _tenant_tables(world):
        b_rows = world.rows_of(table, "B")
        a_rows = world.rows_of(table, "A")
        with conn.transaction(force_rollback=True):
            before = _fingerprint(conn, table)
            b_json = [_row_json(conn, world, table, k) for k in b_rows]
            a_json = [_row_json(conn, world, table, k) for k in a_rows]
            _become(conn, actor)
            where_b, params_b = _pk_match(world, table, b_rows)
            column = "email" if table == "profiles" else next(
                c for c in a_json[0] if c not in world.pk[table]) if a_json else "id"
            update = sql.SQL("UPDATE {} SET {} = {} WHERE {}").format(
                sql.Identifier("public", table), sql.Identifier(column), sql.Identifier(column),
                where_b)
            outcome = _attempt(conn, update, params_b)
            assert outcome in REFUSED, (table, "update", outcome)
            delete = sql.SQL("DELETE FROM {} WHERE {}").format(sql.Identifier("public", table),
                                                                 where_b)
            outcome = _attempt(conn, delete, params_b)
            assert outcome in REFUSED, (table, "delete", outcome)
            for row in b_json:
                if "id" in row and world.pk[table] == ["id"] and table != "profiles":
                    row = {**row, "id": str(uuid.uuid4())}
                outcome = _attempt(conn, _insert_json(table), (json.dumps(row),))
                assert outcome == ("error", INSUFFICIENT_PRIVILEGE), (table, "insert", outcome)
            # moving one of A's rows into business B
            if table not in ("businesses", "profiles") and a_json and "business_id" in a_json[0]:
                where_a, params_a = _pk_match(world, table, a_rows)
                move = sql.SQL("UPDATE {} SET business_id = %s WHERE {}").format(
                    sql.Identifier("public", table), where_a)
                outcome = _attempt(conn, move, [world.business["B"], *params_a])
                assert outcome in REFUSED, (table, "move", outcome)
            conn.execute("RESET ROLE")
            assert _fingerprint(conn, table) == before, f"{who} changed {table}"


_POLICY_COMMANDS = """
SELECT tablename, array_agg(DISTINCT cmd) FROM pg_policies
WHERE schemaname = 'public' AND roles && ARRAY['authenticated', 'public']::name[]
GROUP BY tablename
"""


def _user_commands(world: World) -> dict[str, set[str]]:
    """table -> the commands some policy lets signed-in users run (ALL expanded)."""
    found = {t: set(cmds) for t, cmds in world.conn.execute(_POLICY_COMMANDS)}
    return {t: ({"SELECT", "INSERT", "UPDATE", "DELETE"} if "ALL" in c else c)
            for t, c in found.items()}


def _read_only_tables(world: World) -> list[str]:
    commands = _user_commands(world)
    return [t for t in _tenant_tables(world) if commands.get(t, set()) <= {"SELECT"}]


def _granted(world: World, table: str, privilege: str) -> bool:
    return world.conn.execute("SELECT has_table_privilege('authenticated', %s, %s)",
                              (_regclass(table), privilege)).fetchone()[0]


def test_owner_can_write_own_business_rows(world: World) -> None:
    """The control for the test above: RLS is not simply denying everything."""
    conn = world.conn
    commands = _user_commands(world)
    writable = [t for t in _tenant_tables(world) if t not in ("businesses", "profiles")
                and commands.get(t, set()) >= {"SELECT", "INSERT", "UPDATE", "DELETE"}
                and _granted(world, t, "INSERT")]
    assert {"customers", "sequences", "sequence_steps", "customer_enrollments"} <= set(writable)
    for table in writable:
        with conn.transaction(force_rollback=True):
            keys = world.rows_of(table, "A")
            rows = [_row_json(conn, world, table, k) for k in keys]
            _become(conn, _actors(world)["owner_a"])
            where_a, params_a = _pk_match(world, table, keys)
            column = next(c for c in rows[0] if c not in world.pk[table])
            assert _attempt(conn, sql.SQL("UPDATE {} SET {} = {} WHERE {}").format(
                sql.Identifier("public", table), sql.Identifier(column), sql.Identifier(column),
                where_a), params_a) == ("ok", len(keys)), table
            fresh = {**rows[0], "id": str(uuid.uuid4())} if world.pk[table] == ["id"] else rows[0]
            outcome = _attempt(conn, _insert_json(table), (json.dumps(fresh),))
            # success, or a unique/check violation: anything but an RLS refusal
            assert outcome[0] == "ok" or outcome[1] != INSUFFICIENT_PRIVILEGE, (table, outcome)
            assert _attempt(conn, sql.SQL("DELETE FROM {} WHERE {}").format(
                sql.Identifier("public", table), where_a), params_a)[0] == "ok", table


# --- specific rules -----------------------------------------------------------------------

@pytest.mark.parametrize("change", ["business_id", "role", "id"])
def test_member_cannot_move_or_promote_their_profile(world: World, change: str) -> None:
    value = {"business_id": world.business["B"], "role": "owner",
             "id": world.users["owner_a"]}[change]
    conn = world.conn
    with conn.transaction(force_rollback=True):
        _become(conn, _actors(world)["member_a"])
        outcome = _attempt(conn, sql.SQL("UPDATE public.profiles SET {} = %s WHERE id = %s").format(
            sql.Identifier(change)), (value, world.users["member_a"]))
        assert outcome == ("error", INSUFFICIENT_PRIVILEGE)
        # the column they may change
        assert _attempt(conn, "UPDATE public.profiles SET email = 'new@example.test' WHERE id = %s",
                        (world.users["member_a"],)) == ("ok", 1)


def test_user_cannot_create_a_profile_with_a_role_or_in_another_business(world: World) -> None:
    conn = world.conn
    with conn.transaction(force_rollback=True):
        _become(conn, _actors(world)["owner_a"])
        me = world.users["owner_a"]
        assert _attempt(conn, "INSERT INTO public.profiles (id, business_id) VALUES (%s, %s)",
                        (me, world.business["B"])) == ("error", INSUFFICIENT_PRIVILEGE)
        assert _attempt(conn, "INSERT INTO public.profiles (id, business_id, role) "
                              "VALUES (%s, %s, 'admin')",
                        (me, world.business["A"])) == ("error", INSUFFICIENT_PRIVILEGE)
        assert _attempt(conn, "INSERT INTO public.profiles (id, business_id) VALUES (%s, %s)",
                        (me, world.business["A"])) == ("ok", 1)


@pytest.mark.parametrize("column, value", [("subscription_status", "active"),
                                           ("stripe_customer_id", "cus_free"),
                                           ("created_by", "member_a@example.test")])
def test_users_cannot_change_billing_or_ownership_of_a_business(world: World, column: str,
                                                                 value: str) -> None:
    conn = world.conn
    for who in ("member_a", "owner_a"):
        with conn.transaction(force_rollback=True):
            _become(conn, _actors(world)[who])
            outcome = _attempt(conn, sql.SQL("UPDATE public.businesses SET {} = %s WHERE id = %s"
                                             ).format(sql.Identifier(column)),
                               (value, world.business["A"]))
            assert outcome == ("error", INSUFFICIENT_PRIVILEGE), (who, column, outcome)
            # renaming is the owners' and admins' (a member touches nothing)
            assert _attempt(conn, "UPDATE public.businesses SET name = 'Renamed' WHERE id = %s",
                            (world.business["A"],)) == ("ok", 1 if who == "owner_a" else 0)


def test_owner_creates_a_business_only_for_themselves_and_not_already_paid(world: World) -> None:
    conn = world.conn
    with conn.transaction(force_rollback=True):
        _become(conn, _actors(world)["owner_a"])
        assert _attempt(conn, "INSERT INTO public.businesses (name, created_by) "
                              "VALUES ('Theirs', 'owner_b@example.test')"
                        ) == ("error", INSUFFICIENT_PRIVILEGE)
        assert _attempt(conn, "INSERT INTO public.businesses (name, created_by, "
                              "subscription_status) VALUES ('Paid', 'owner_a@example.test', "
                              "'active')") == ("error", INSUFFICIENT_PRIVILEGE)
        assert _attempt(conn, "INSERT INTO public.businesses (name, created_by) "
                              "VALUES ('Mine', 'owner_a@example.test')") == ("ok", 1)


def test_member_cannot_delete_the_business(world: World) -> None:
    conn = world.conn
    with conn.transaction(force_rollback=True):
        _become(conn, _actors(world)["member_a"])
        assert _attempt(conn, "DELETE FROM public.businesses WHERE id = %s",
                        (world.business["A"],)) == ("ok", 0)


def test_member_cannot_read_business_b_events_or_connections(world: World) -> None:
    conn = world.conn
    with conn.transaction(force_rollback=True):
        _become(conn, _actors(world)["member_a"])
        for table in ("trigger_events", "connections"):
            rows = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE business_id = %s").format(
                sql.Identifier("public", table)), (world.business["B"],)).fetchone()[0]
            assert rows == 0, table


def test_daemon_tables_are_read_only_for_users(world: World) -> None:
    read_only = _read_only_tables(world)
    assert set(read_only) >= DAEMON_TABLES
    for table in read_only:
        _check_read_only(world, table)


def _check_read_only(world: World, table: str) -> None:
    conn = world.conn
    keys = world.rows_of(table, "A")
    for who in ("owner_a", "member_a"):
        with conn.transaction(force_rollback=True):
            before = _fingerprint(conn, table)
            rows = [_row_json(conn, world, table, k) for k in keys]
            _become(conn, _actors(world)[who])
            assert _visible(conn, world, table) == keys  # readable...
            where, params = _pk_match(world, table, keys)
            column = next(c for c in rows[0] if c not in world.pk[table])
            assert _attempt(conn, sql.SQL("UPDATE {} SET {} = {} WHERE {}").format(
                sql.Identifier("public", table), sql.Identifier(column), sql.Identifier(column),
                where), params) in (("ok", 0), ("error", INSUFFICIENT_PRIVILEGE))
            assert _attempt(conn, sql.SQL("DELETE FROM {} WHERE {}").format(
                sql.Identifier("public", table), where), params) in (
                ("ok", 0), ("error", INSUFFICIENT_PRIVILEGE))
            fresh = {**rows[0], "id": str(uuid.uuid4())} if world.pk[table] == ["id"] else {
                **rows[0], "external_id": "new"}
            assert _attempt(conn, _insert_json(table), (json.dumps(fresh),)) == (
                "error", INSUFFICIENT_PRIVILEGE)
            conn.execute("RESET ROLE")
            assert _fingerprint(conn, table) == before, (who, table)
