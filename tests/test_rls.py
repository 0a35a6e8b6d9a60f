"""Row-level security over every table of schema public, as Supabase's API roles see it.

The world (tests/tenant_world.py) is seeded from the catalog, so a table added by a later
migration is covered without editing this file. A table without FORCE RLS, without a
policy, or that cannot be classified or seeded fails.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql
from tenant_world import (
    GLOBAL_TABLES,
    TABLES_SQL,
    World,
    actors,
    attempt,
    become,
    build_world,
    fingerprint,
    insert_json,
    pk_match,
    regclass,
    row_json,
    tenant_tables,
    visible,
    without_id,
)

from blippsync.testing.database import fresh_database

# Written by the daemon (a BYPASSRLS role) only; the business's users may read them.
DAEMON_TABLES = {"connections", "sync_runs", "customer_identities", "trigger_events"}
INSUFFICIENT_PRIVILEGE = "42501"  # RLS WITH CHECK failures and missing privileges alike
FOREIGN_KEY_VIOLATION = "23503"  # a same-business key refusing a reference across tenants
# touched nothing, or failed
REFUSED = (("ok", 0), ("error", INSUFFICIENT_PRIVILEGE), ("error", FOREIGN_KEY_VIOLATION))


@pytest.fixture(scope="module")
def world(pg_server_url: str) -> Iterator[World]:
    """Seeded once per module: every test acts inside a transaction it rolls back."""
    with fresh_database(pg_server_url) as database_url:
        yield from build_world(database_url)


# --- the matrix ---------------------------------------------------------------------------

def test_every_public_table_forces_rls_and_has_a_policy(world: World) -> None:
    rows = world.conn.execute(TABLES_SQL).fetchall()
    assert len(rows) >= 18
    bad = [f"{name} (enabled={enabled}, forced={forced}, policies={policies})"
           for name, enabled, forced, policies in rows if not (enabled and forced and policies)]
    assert bad == [], "tables without forced RLS or without a policy: " + ", ".join(bad)


def test_every_tenant_table_is_seeded_for_both_businesses(world: World) -> None:
    for table in tenant_tables(world):
        assert world.rows_of(table, "A") and world.rows_of(table, "B"), table


@pytest.mark.parametrize("who, letter", [("owner_a", "A"), ("admin_a", "A"), ("member_a", "A"),
                                         ("owner_b", "B")])
def test_users_see_exactly_their_business_rows(world: World, who: str, letter: str) -> None:
    actor = actors(world)[who]
    conn = world.conn
    with conn.transaction(force_rollback=True):
        become(conn, actor)
        for table in tenant_tables(world):
            seen = visible(conn, world, table)
            if table == "profiles":
                # a profile is visible only to its own user
                own = {(world.users[who],)} & set(world.owner_of["profiles"])
                assert seen == own, (who, table)
                continue
            assert seen == world.rows_of(table, letter), (who, table)
        for table in GLOBAL_TABLES & set(world.tables):
            assert visible(conn, world, table), f"{table} should be readable by {who}"


def test_anon_sees_nothing_and_writes_nothing(world: World) -> None:
    conn = world.conn
    for table in world.tables:
        with conn.transaction(force_rollback=True):
            before = fingerprint(conn, table)
            become(conn, actors(world)["anon"])
            try:
                with conn.transaction():
                    assert visible(conn, world, table) == set(), table
            except psycopg.errors.InsufficientPrivilege:
                pass  # anon holds no privilege at all: sees nothing either
            assert attempt(conn, sql.SQL("DELETE FROM {}").format(
                sql.Identifier("public", table))) in (("ok", 0), ("error", INSUFFICIENT_PRIVILEGE))
            conn.execute("RESET ROLE")
            assert fingerprint(conn, table) == before, table


@pytest.mark.parametrize("who", ["owner_a", "member_a"])
def test_writes_aimed_at_business_b_fail_or_touch_nothing(world: World, who: str) -> None:
    conn = world.conn
    actor = actors(world)[who]
    for table in tenant_tables(world):
        b_rows = world.rows_of(table, "B")
        a_rows = world.rows_of(table, "A")
        with conn.transaction(force_rollback=True):
            before = fingerprint(conn, table)
            b_json = [row_json(world, table, k) for k in b_rows]
            a_json = [row_json(world, table, k) for k in a_rows]
            become(conn, actor)
            where_b, params_b = pk_match(world, table, b_rows)
            column = "email" if table == "profiles" else next(
                c for c in a_json[0] if c not in world.pk[table]) if a_json else "id"
            update = sql.SQL("UPDATE {} SET {} = {} WHERE {}").format(
                sql.Identifier("public", table), sql.Identifier(column), sql.Identifier(column),
                where_b)
            outcome = attempt(conn, update, params_b)
            assert outcome in REFUSED, (table, "update", outcome)
            delete = sql.SQL("DELETE FROM {} WHERE {}").format(sql.Identifier("public", table),
                                                                 where_b)
            outcome = attempt(conn, delete, params_b)
            assert outcome in REFUSED, (table, "delete", outcome)
            for row in b_json:
                if table != "profiles":
                    row = without_id(world, table, row)
                outcome = attempt(conn, *insert_json(table, row))
                assert outcome == ("error", INSUFFICIENT_PRIVILEGE), (table, "insert", outcome)
            # moving one of A's rows into business B
            if table not in ("businesses", "profiles") and a_json and "business_id" in a_json[0]:
                where_a, params_a = pk_match(world, table, a_rows)
                move = sql.SQL("UPDATE {} SET business_id = %s WHERE {}").format(
                    sql.Identifier("public", table), where_a)
                outcome = attempt(conn, move, [world.business["B"], *params_a])
                assert outcome in REFUSED, (table, "move", outcome)
            conn.execute("RESET ROLE")
            assert fingerprint(conn, table) == before, f"{who} changed {table}"


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
    return [t for t in tenant_tables(world) if commands.get(t, set()) <= {"SELECT"}]


def _granted(world: World, table: str, privilege: str) -> bool:
    return world.conn.execute("SELECT has_any_column_privilege('authenticated', %s, %s)",
                              (regclass(table), privilege)).fetchone()[0]


def test_owner_can_write_own_business_rows(world: World) -> None:
    """The control for the test above: RLS is not simply denying everything."""
    conn = world.conn
    commands = _user_commands(world)
    writable = [t for t in tenant_tables(world) if t not in ("businesses", "profiles")
                and commands.get(t, set()) >= {"SELECT", "INSERT", "UPDATE", "DELETE"}
                and _granted(world, t, "INSERT")]
    assert {"customers", "sequences", "sequence_steps", "customer_enrollments"} <= set(writable)
    for table in writable:
        with conn.transaction(force_rollback=True):
            keys = world.rows_of(table, "A")
            rows = [row_json(world, table, k) for k in keys]
            become(conn, actors(world)["owner_a"])
            where_a, params_a = pk_match(world, table, keys)
            column = next(c for c in rows[0] if c not in world.pk[table])
            assert attempt(conn, sql.SQL("UPDATE {} SET {} = {} WHERE {}").format(
                sql.Identifier("public", table), sql.Identifier(column), sql.Identifier(column),
                where_a), params_a) == ("ok", len(keys)), table
            outcome = attempt(conn, *insert_json(table, without_id(world, table, rows[0])))
            # success, or a unique/check violation: anything but an RLS refusal
            assert outcome[0] == "ok" or outcome[1] != INSUFFICIENT_PRIVILEGE, (table, outcome)
            assert attempt(conn, sql.SQL("DELETE FROM {} WHERE {}").format(
                sql.Identifier("public", table), where_a), params_a)[0] == "ok", table


# --- specific rules -----------------------------------------------------------------------

@pytest.mark.parametrize("change", ["business_id", "role", "id"])
def test_member_cannot_move_or_promote_their_profile(world: World, change: str) -> None:
    value = {"business_id": world.business["B"], "role": "owner",
             "id": world.users["owner_a"]}[change]
    conn = world.conn
    with conn.transaction(force_rollback=True):
        become(conn, actors(world)["member_a"])
        outcome = attempt(conn, sql.SQL("UPDATE public.profiles SET {} = %s WHERE id = %s").format(
            sql.Identifier(change)), (value, world.users["member_a"]))
        assert outcome == ("error", INSUFFICIENT_PRIVILEGE)
        # the column they may change
        assert attempt(conn, "UPDATE public.profiles SET email = 'new@example.test' WHERE id = %s",
                        (world.users["member_a"],)) == ("ok", 1)


def test_user_cannot_create_a_profile_with_a_role_or_in_another_business(world: World) -> None:
    conn = world.conn
    with conn.transaction(force_rollback=True):
        become(conn, actors(world)["owner_a"])
        me = world.users["owner_a"]
        assert attempt(conn, "INSERT INTO public.profiles (id, business_id) VALUES (%s, %s)",
                        (me, world.business["B"])) == ("error", INSUFFICIENT_PRIVILEGE)
        assert attempt(conn, "INSERT INTO public.profiles (id, business_id, role) "
                              "VALUES (%s, %s, 'admin')",
                        (me, world.business["A"])) == ("error", INSUFFICIENT_PRIVILEGE)
        assert attempt(conn, "INSERT INTO public.profiles (id, business_id) VALUES (%s, %s)",
                        (me, world.business["A"])) == ("ok", 1)


@pytest.mark.parametrize("column, value", [("subscription_status", "active"),
                                           ("stripe_customer_id", "cus_free"),
                                           ("created_by", "member_a@example.test")])
def test_users_cannot_change_billing_or_ownership_of_a_business(world: World, column: str,
                                                                 value: str) -> None:
    conn = world.conn
    for who in ("member_a", "owner_a"):
        with conn.transaction(force_rollback=True):
            become(conn, actors(world)[who])
            outcome = attempt(conn, sql.SQL("UPDATE public.businesses SET {} = %s WHERE id = %s"
                                             ).format(sql.Identifier(column)),
                               (value, world.business["A"]))
            assert outcome == ("error", INSUFFICIENT_PRIVILEGE), (who, column, outcome)
            # renaming is the owners' and admins' (a member touches nothing)
            assert attempt(conn, "UPDATE public.businesses SET name = 'Renamed' WHERE id = %s",
                            (world.business["A"],)) == ("ok", 1 if who == "owner_a" else 0)


def test_owner_creates_a_business_only_for_themselves_and_not_already_paid(world: World) -> None:
    conn = world.conn
    with conn.transaction(force_rollback=True):
        become(conn, actors(world)["owner_a"])
        assert attempt(conn, "INSERT INTO public.businesses (name, created_by) "
                              "VALUES ('Theirs', 'owner_b@example.test')"
                        ) == ("error", INSUFFICIENT_PRIVILEGE)
        assert attempt(conn, "INSERT INTO public.businesses (name, created_by, "
                              "subscription_status) VALUES ('Paid', 'owner_a@example.test', "
                              "'active')") == ("error", INSUFFICIENT_PRIVILEGE)
        assert attempt(conn, "INSERT INTO public.businesses (name, created_by) "
                              "VALUES ('Mine', 'owner_a@example.test')") == ("ok", 1)


def test_member_cannot_delete_the_business(world: World) -> None:
    conn = world.conn
    with conn.transaction(force_rollback=True):
        become(conn, actors(world)["member_a"])
        assert attempt(conn, "DELETE FROM public.businesses WHERE id = %s",
                        (world.business["A"],)) == ("ok", 0)


def test_member_cannot_read_business_b_events_or_connections(world: World) -> None:
    conn = world.conn
    with conn.transaction(force_rollback=True):
        become(conn, actors(world)["member_a"])
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
            before = fingerprint(conn, table)
            rows = [row_json(world, table, k) for k in keys]
            become(conn, actors(world)[who])
            assert visible(conn, world, table) == keys  # readable...
            where, params = pk_match(world, table, keys)
            column = next(c for c in rows[0] if c not in world.pk[table])
            assert attempt(conn, sql.SQL("UPDATE {} SET {} = {} WHERE {}").format(
                sql.Identifier("public", table), sql.Identifier(column), sql.Identifier(column),
                where), params) in (("ok", 0), ("error", INSUFFICIENT_PRIVILEGE))
            assert attempt(conn, sql.SQL("DELETE FROM {} WHERE {}").format(
                sql.Identifier("public", table), where), params) in (
                ("ok", 0), ("error", INSUFFICIENT_PRIVILEGE))
            fresh = without_id(world, table, rows[0]) if world.pk[table] == ["id"] else {
                **rows[0], "external_id": "new"}
            assert attempt(conn, *insert_json(table, fresh)) == ("error", INSUFFICIENT_PRIVILEGE)
            conn.execute("RESET ROLE")
            assert fingerprint(conn, table) == before, (who, table)
