"""Attacking tenant isolation as the web app's users would, on a Supabase-prepared database.

The database is built as Supabase builds one (tests/supabase_like.py: default privileges
granting ALL to the API roles, a NOSUPERUSER owner running the migrations) and every
attempt goes through `authenticator` switching role per request with request.jwt.claims,
in a transaction rolled back afterwards. The matrix: every public table x every verb x
every persona (owner, admin and member of A, the owner of B, a phone user whose token says
"email": "", a user who never confirmed their address, anon); every foreign-key column
pointed at another tenant's row (by users and by the daemon's own role); TRUNCATE.
Every count of what got through must be zero.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql
from supabase_like import supabase_database
from tenant_world import (
    GLOBAL_TABLES,
    USERS,
    Actor,
    World,
    actors,
    become,
    build_world,
    insert_json,
    pk_match,
    row_json,
    tenant_tables,
    without_id,
)

OWN = {"owner_a": "A", "admin_a": "A", "member_a": "A", "owner_b": "B"}
TOKEN_COLUMNS = {
    "integrations_quickbooks": ("access_token", "refresh_token", "previous_refresh_token"),
    "integrations_jobber": ("access_token", "refresh_token", "previous_refresh_token"),
    "connections": ("credentials", "previous_credentials"),
}
# every foreign key of public: (table, column, referenced table); composite same-business
# keys (business_id, x) -> (business_id, id) count as column x
FOREIGN_KEYS = """
SELECT c.conrelid::regclass::text, a.attname, f.relname
FROM pg_constraint c
CROSS JOIN LATERAL unnest(c.conkey) AS k(attnum)
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum
JOIN pg_class f ON f.oid = c.confrelid
WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
  AND f.relnamespace = 'public'::regnamespace AND a.attname <> 'business_id'
ORDER BY 1, 2
"""


@dataclass
class Attack:
    world: World
    api: psycopg.Connection          # logged in as authenticator
    people: dict[str, Actor]
    attempts: Counter[str] = field(default_factory=Counter)
    breaches: list[str] = field(default_factory=list)

    def run(self, who: str, query: sql.Composable | str, params: Any = None
            ) -> tuple[str, Any, psycopg.Error | None]:
        """One API request: ("ok", cursor, None) or ("error", sqlstate, exception)."""
        with self.api.transaction(force_rollback=True):
            become(self.api, self.people[who])
            try:
                with self.api.transaction():
                    cur = self.api.execute(query, params)
                    return "ok", cur, None
            except psycopg.Error as exc:
                return "error", exc.sqlstate, exc

    def breach(self, kind: str, text: str) -> None:
        self.breaches.append(f"{kind}: {text}")


@pytest.fixture(scope="module")
def attack(pg_server_url: str) -> Iterator[Attack]:
    with supabase_database(pg_server_url) as prepared:
        for world in build_world(prepared.owner_url, prepared.superuser_url):
            with psycopg.connect(prepared.authenticator_url) as api:
                yield Attack(world, api, actors(world))


def _foreign(who: str) -> set[str]:
    return {"A", "B", "E", "U"} - {OWN.get(who, "")}


def _keys_of(world: World, table: str, letters: set[str]) -> set[tuple]:
    return {k for k, v in world.owner_of[table].items() if v in letters}


def _attack_table(a: Attack, who: str, table: str) -> None:
    world, foreign = a.world, _foreign(who)
    targets = _keys_of(world, table, foreign)
    keys = sql.SQL(", ").join(map(sql.Identifier, world.pk[table]))
    target = sql.Identifier("public", table)

    a.attempts["select"] += 1
    status, cur, _ = a.run(who, sql.SQL("SELECT {} FROM {}").format(keys, target))
    if status == "ok":
        seen = {tuple(r) for r in cur.fetchall()} & targets
        if seen:
            a.breach("read", f"{who} read {len(seen)} foreign row(s) of {table}")
    where, params = pk_match(world, table, targets)
    column = next(c for c in row_json(world, table, next(iter(targets)))
                  if c not in world.pk[table])
    for verb, query in (
            ("update", sql.SQL("UPDATE {} SET {} = {} WHERE {}").format(
                target, sql.Identifier(column), sql.Identifier(column), where)),
            ("delete", sql.SQL("DELETE FROM {} WHERE {}").format(target, where))):
        a.attempts[verb] += 1
        status, cur, _ = a.run(who, query, params)
        if status == "ok" and cur.rowcount:
            a.breach("write", f"{who} {verb}d {cur.rowcount} foreign row(s) of {table}")
    for key in sorted(targets, key=str):
        a.attempts["insert"] += 1
        row = without_id(world, table, row_json(world, table, key))
        status, _, _ = a.run(who, *insert_json(table, row))
        if status == "ok":
            a.breach("write", f"{who} inserted a row of business {key} into {table}")
    own = _keys_of(world, table, {OWN[who]}) if who in OWN else set()
    if own and table not in ("businesses", "profiles") and "business_id" in row_json(
            world, table, next(iter(own))):
        where_own, params_own = pk_match(world, table, own)
        for letter in sorted(foreign):
            a.attempts["move"] += 1
            status, cur, _ = a.run(who, sql.SQL("UPDATE {} SET business_id = %s WHERE {}").format(
                target, where_own), [world.business[letter], *params_own])
            if status == "ok" and cur.rowcount:
                a.breach("write", f"{who} moved {table} rows into business {letter}")
    a.attempts["truncate"] += 1
    status, _, _ = a.run(who, sql.SQL("TRUNCATE {} CASCADE").format(target))
    if status == "ok":
        a.breach("truncate", f"{who} truncated {table}")


@pytest.mark.slow
def test_every_table_every_verb_every_persona(attack: Attack) -> None:
    world = attack.world
    for who in attack.people:
        for table in tenant_tables(world):
            _attack_table(attack, who, table)
        for table in GLOBAL_TABLES:
            for verb, query in (("insert", f"INSERT INTO public.{table} (name) VALUES ('zz')"),
                                ("update", f"UPDATE public.{table} SET builtin = builtin"),
                                ("delete", f"DELETE FROM public.{table}"),
                                ("truncate", f"TRUNCATE public.{table} CASCADE")):
                attack.attempts[verb] += 1
                status, cur, _ = attack.run(who, query)
                if status == "ok" and (verb == "truncate" or cur.rowcount):
                    attack.breach("write", f"{who} {verb} on global table {table}")
    total = sum(attack.attempts.values())
    print(f"\ntenant matrix: {total} attempts {dict(attack.attempts)}; "
          f"{len(attack.breaches)} got through")
    assert total > 1000
    assert attack.breaches == []


def test_token_columns_are_closed_even_to_the_owner(attack: Attack) -> None:
    world, attempts, breaches = attack.world, 0, []
    for who in attack.people:
        for table, columns in TOKEN_COLUMNS.items():
            own = _keys_of(world, table, {OWN.get(who, "A")})
            where, params = pk_match(world, table, own)
            for column in columns:
                col, target = sql.Identifier(column), sql.Identifier("public", table)
                for query, args in (
                        (sql.SQL("SELECT {} FROM {}").format(col, target), None),
                        (sql.SQL("UPDATE {} SET {} = 'bsv2:x:y' WHERE {}").format(
                            target, col, where), params)):
                    attempts += 1
                    status, cur, _ = attack.run(who, query, args)
                    if status == "ok" and cur.rowcount:
                        breaches.append(f"{who}: {table}.{column}")
    print(f"\ntoken columns: {attempts} attempts, {len(breaches)} got through")
    assert breaches == []
    # the control: the owner still reads the rest of the integration
    status, cur, _ = attack.run("owner_a", "SELECT realm_id, connection_status "
                                           "FROM public.integrations_quickbooks")
    assert status == "ok" and cur.rowcount == 1


def _foreign_keys(world: World) -> list[tuple[str, str, str]]:
    found = []
    for table, column, parent in world.conn.execute(FOREIGN_KEYS):
        table = table.removeprefix("public.")
        if table in world.owner_of and parent in world.owner_of:
            found.append((table, column, parent))
    return found


def test_no_reference_may_cross_tenants_nor_reveal_an_id(attack: Attack) -> None:
    """Every foreign key, pointed by A's users and by the daemon's own role at B's row: all
    refused, and refused exactly as a pointer to nothing is (no existence oracle)."""
    world = attack.world
    fks = _foreign_keys(world)
    assert {("customer_enrollments", "customer_id", "customers"),
            ("customers", "merged_into_id", "customers"),
            ("qr_codes", "tech_id", "techs")} <= set(fks)
    attempts, accepted, oracles = 0, [], []
    for table, column, parent in fks:
        a_key = next(iter(_keys_of(world, table, {"A"})))
        row = row_json(world, table, a_key)
        b_parent = row_json(world, parent, next(iter(_keys_of(world, parent, {"B"}))))["id"]
        nowhere = str(uuid.uuid4())
        where, params = pk_match(world, table, {a_key})
        update = sql.SQL("UPDATE {} SET {} = %s WHERE {}").format(
            sql.Identifier("public", table), sql.Identifier(column), where)
        for who in ("owner_a", "admin_a", "member_a"):
            outcomes = {}
            for target in (b_parent, nowhere):
                attempts += 2
                status, cur, exc = attack.run(who, update, [target, *params])
                if status == "ok" and cur.rowcount:
                    accepted.append(f"{who}: update {table}.{column} -> B")
                fresh = {**without_id(world, table, row), column: target}
                status2, _, exc2 = attack.run(who, *insert_json(table, fresh))
                if status2 == "ok":
                    accepted.append(f"{who}: insert {table}.{column} -> B")
                outcomes[target] = [(e.sqlstate, e.diag.constraint_name) if e else None
                                    for e in (exc, exc2)]
            if outcomes[b_parent] != outcomes[nowhere]:
                oracles.append(f"{who}: {table}.{column} {outcomes}")
        if "business_id" in row and column != "business_id":
            # the daemon's role bypasses RLS: only the key itself stands in the way
            attempts += 1
            try:
                with world.conn.transaction(force_rollback=True):
                    world.conn.execute(update, [b_parent, *params])
                    accepted.append(f"daemon role: {table}.{column} -> B")
            except (psycopg.errors.ForeignKeyViolation, psycopg.errors.UniqueViolation):
                pass  # refused (a unique key may refuse first: the row was not written)
    print(f"\nreferences: {attempts} attempts over {len(fks)} foreign keys; "
          f"{len(accepted)} accepted, {len(oracles)} existence oracles")
    assert accepted == []
    assert oracles == []


def test_supabase_js_insert_select_of_a_new_business_works_for_its_owner(attack: Attack) -> None:
    status, cur, _ = attack.run("owner_a", "INSERT INTO public.businesses (name, created_by) "
                                           "VALUES ('Second shop', 'owner_a@example.test') "
                                           "RETURNING id, name")
    assert status == "ok" and cur.fetchone()[1] == "Second shop"


@pytest.mark.parametrize("who, created_by", [("phone_user", ""), ("unconfirmed",
                                                                  "unconfirmed@example.test")])
def test_empty_or_unconfirmed_emails_create_and_own_nothing(attack: Attack, who: str,
                                                            created_by: str) -> None:
    status, _, exc = attack.run(who, "INSERT INTO public.businesses (name, created_by) "
                                     "VALUES ('Mine now', %s)", (created_by,))
    assert status == "error" and exc is not None and exc.sqlstate == "42501"
    status, cur, _ = attack.run(who, "SELECT id FROM public.businesses")
    assert status == "ok" and cur.fetchall() == []
    assert USERS[who][2] == created_by  # the claim they carry is what a business names


@pytest.mark.parametrize("who, allowed", [("owner_a", True), ("admin_a", True),
                                          ("member_a", False)])
def test_only_owners_and_admins_change_the_business_and_its_integrations(
        attack: Attack, who: str, allowed: bool) -> None:
    a = attack.world.business["A"]
    for query in ("UPDATE public.businesses SET google_review_url = 'https://evil.example' "
                  "WHERE id = %s",
                  "DELETE FROM public.integrations_jobber WHERE business_id = %s",
                  "DELETE FROM public.integrations_quickbooks WHERE business_id = %s",
                  "UPDATE public.sequences SET name = name || '!' WHERE business_id = %s"):
        status, cur, _ = attack.run(who, query, (a,))
        changed = status == "ok" and cur.rowcount > 0
        assert changed is allowed, (who, query)
    # members keep their everyday writes
    status, cur, _ = attack.run(who, "UPDATE public.customers SET name = 'x' "
                                     "WHERE business_id = %s", (a,))
    assert status == "ok" and cur.rowcount == 1


@pytest.mark.parametrize("who, allowed", [("owner_a", True), ("admin_a", False),
                                          ("member_a", False)])
def test_only_owners_delete_the_business(attack: Attack, who: str, allowed: bool) -> None:
    status, cur, _ = attack.run(who, "DELETE FROM public.businesses WHERE id = %s",
                                (attack.world.business["A"],))
    assert (status == "ok" and cur.rowcount == 1) is allowed


def test_the_helpers_are_not_callable_by_anon(attack: Attack) -> None:
    status, _, exc = attack.run("anon", "SELECT public.blipp_user_business_ids()")
    assert status == "error" and exc is not None and exc.sqlstate == "42501"


def test_the_world_is_what_the_tests_assume(attack: Attack) -> None:
    """Controls: seeded rows exist for every tenant table and the owner reaches A's."""
    world = attack.world
    for table in tenant_tables(world):
        assert _keys_of(world, table, {"A"}) and _keys_of(world, table, {"B"}), table
    status, cur, _ = attack.run("owner_a", "SELECT count(*) FROM public.customers")
    assert status == "ok" and cur.fetchone()[0] == 1


def test_no_id_of_another_tenant_can_be_probed(attack: Attack) -> None:
    """Choosing an id (on insert or update) that another tenant's row has must fail exactly as
    a fresh id does: a unique violation would confirm the other row exists."""
    world, attempts, oracles = attack.world, 0, []
    for table in tenant_tables(world):
        if world.pk[table] != ["id"] or table in ("businesses", "profiles"):
            continue
        a_key = next(iter(_keys_of(world, table, {"A"})))
        row = row_json(world, table, a_key)
        taken = row_json(world, table, next(iter(_keys_of(world, table, {"B"}))))["id"]
        where, params = pk_match(world, table, {a_key})
        update = sql.SQL("UPDATE {} SET id = %s WHERE {}").format(
            sql.Identifier("public", table), where)
        for who in ("owner_a", "member_a"):
            outcomes = []
            for candidate in (taken, str(uuid.uuid4())):
                attempts += 2
                found = []
                for query, args in (insert_json(table, {**row, "id": candidate}),
                                    (update, [candidate, *params])):
                    status, cur, exc = attack.run(who, query, args)
                    found.append(exc.sqlstate if exc else ("ok", cur.rowcount))
                outcomes.append(found)
            if outcomes[0] != outcomes[1]:
                oracles.append(f"{who}: {table} {outcomes}")
    print(f"\nid probes: {attempts} attempts, {len(oracles)} oracles")
    assert attempts > 50
    assert oracles == []
