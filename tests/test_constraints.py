"""The schema's own guards: uniqueness and every enumerated column of the data model."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import errors, sql
from sqlalchemy.engine import make_url


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    url = make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as connection:
        yield connection


@pytest.fixture
def ids(conn: psycopg.Connection) -> dict[str, Any]:
    """One business with one row in each table an enumerated column lives in."""
    out: dict[str, Any] = {}
    q = conn.execute
    out["business"] = q("INSERT INTO businesses (name, created_by) VALUES ('A', 'a@example.test') "
                        "RETURNING id").fetchone()[0]
    out["business2"] = q("INSERT INTO businesses (name, created_by) VALUES ('B', 'b@example.test') "
                         "RETURNING id").fetchone()[0]
    out["user"] = q("INSERT INTO auth.users (email) VALUES ('u@example.test') RETURNING id"
                    ).fetchone()[0]
    q("INSERT INTO profiles (id, business_id) VALUES (%s, %s)", (out["user"], out["business"]))
    out["customer"] = q("INSERT INTO customers (business_id, name) VALUES (%s, 'C') RETURNING id",
                        (out["business"],)).fetchone()[0]
    out["sequence"] = q("INSERT INTO sequences (business_id, name, trigger_source, "
                        "trigger_event_type) VALUES (%s, 'S', 'quickbooks', 'invoice_paid') "
                        "RETURNING id", (out["business"],)).fetchone()[0]
    out["step"] = q("INSERT INTO sequence_steps (sequence_id, step_order, step_type) "
                    "VALUES (%s, 0, 'email') RETURNING id", (out["sequence"],)).fetchone()[0]
    out["enrollment"] = q("INSERT INTO customer_enrollments (sequence_id, customer_id) "
                          "VALUES (%s, %s) RETURNING id",
                          (out["sequence"], out["customer"])).fetchone()[0]
    for table in ("integrations_quickbooks", "integrations_jobber"):
        out[table] = q(sql.SQL("INSERT INTO {} (business_id) VALUES (%s) RETURNING id").format(
            sql.Identifier(table)), (out["business"],)).fetchone()[0]
    out["connection"] = q("INSERT INTO connections (business_id, connector) VALUES (%s, 'csv') "
                          "RETURNING id", (out["business"],)).fetchone()[0]
    out["review_request"] = q("INSERT INTO review_requests (business_id, channel) "
                              "VALUES (%s, 'email') RETURNING id", (out["business"],)).fetchone()[0]
    out["feedback"] = q("INSERT INTO private_feedback (business_id, rating, source) "
                        "VALUES (%s, 5, 'qr') RETURNING id", (out["business"],)).fetchone()[0]
    out["event"] = q("INSERT INTO trigger_events (business_id, source, event_type, occurred_at, "
                     "dedupe_key) VALUES (%s, 'jobber', 'job_completed', now(), 'k1') RETURNING id",
                     (out["business"],)).fetchone()[0]
    return out


def _insert_customer(conn: psycopg.Connection, business: Any, **values: Any) -> None:
    cols = ["business_id", *values]
    conn.execute(sql.SQL("INSERT INTO customers ({}) VALUES ({})").format(
        sql.SQL(", ").join(map(sql.Identifier, cols)),
        sql.SQL(", ").join(sql.Placeholder() * len(cols))), [business, *values.values()])


def test_same_email_different_case_twice_in_one_business_is_rejected(
        conn: psycopg.Connection, ids: dict[str, Any]) -> None:
    _insert_customer(conn, ids["business"], email="Jane.Doe@Example.com")
    with pytest.raises(errors.UniqueViolation):
        _insert_customer(conn, ids["business"], email="jane.doe@example.COM")


def test_same_email_in_two_businesses_is_allowed(conn: psycopg.Connection,
                                                 ids: dict[str, Any]) -> None:
    _insert_customer(conn, ids["business"], email="jane@example.com")
    _insert_customer(conn, ids["business2"], email="jane@example.com")
    # and customers without an email do not collide
    _insert_customer(conn, ids["business"])
    _insert_customer(conn, ids["business"])
    count = conn.execute("SELECT count(*) FROM customers WHERE lower(email) = 'jane@example.com'"
                         ).fetchone()[0]
    assert count == 2


def test_business_source_external_id_is_unique(conn: psycopg.Connection,
                                               ids: dict[str, Any]) -> None:
    _insert_customer(conn, ids["business"], source="quickbooks", external_id="42")
    _insert_customer(conn, ids["business"], source="jobber", external_id="42")
    _insert_customer(conn, ids["business2"], source="quickbooks", external_id="42")
    with pytest.raises(errors.UniqueViolation):
        _insert_customer(conn, ids["business"], source="quickbooks", external_id="42")


# (table, column, row key in `ids`, a valid value, an invalid value)
ENUMERATED = [
    ("businesses", "subscription_status", "business", "past_due", "free_forever"),
    ("profiles", "role", "user", "admin", "superuser"),
    ("sequences", "status", "sequence", "paused", "running"),
    ("sequence_steps", "step_type", "step", "wait", "fax"),
    ("sequence_steps", "channel", "step", "sms", "pigeon"),
    ("sequence_steps", "message_purpose", "step", "rebooking", "spam"),
    ("customer_enrollments", "status", "enrollment", "stopped", "paused"),
    ("integrations_quickbooks", "connection_status", "integrations_quickbooks", "token_expired",
     "broken"),
    ("integrations_jobber", "connection_status", "integrations_jobber", "disconnected", "broken"),
    ("connections", "status", "connection", "token_expired", "broken"),
    ("review_requests", "status", "review_request", "clicked", "opened"),
    ("review_requests", "channel", "review_request", "sms", "fax"),
    ("private_feedback", "source", "feedback", "sms", "phone"),
    ("private_feedback", "rating", "feedback", 1, 6),
    ("private_feedback", "rating", "feedback", 5, 0),
    ("trigger_events", "routing_state", "event", "routed", "lost"),
]


def test_enumerated_columns_reject_unknown_values(conn: psycopg.Connection,
                                                  ids: dict[str, Any]) -> None:
    # one database for all cases (a clone per case costs more than the checks)
    for table, column, key, good, bad in ENUMERATED:
        update = sql.SQL("UPDATE {} SET {} = %s WHERE id = %s").format(sql.Identifier(table),
                                                                      sql.Identifier(column))
        assert conn.execute(update, (good, ids[key])).rowcount == 1, (table, column, good)
        with pytest.raises(errors.CheckViolation):
            conn.execute(update, (bad, ids[key]))
            pytest.fail(f"{table}.{column} accepted {bad!r}")


SOURCE_COLUMNS = [("customers", "source", "customer"), ("sequences", "trigger_source", "sequence"),
                  ("connections", "connector", "connection"), ("trigger_events", "source", "event")]


def test_source_columns_accept_only_registered_sources(conn: psycopg.Connection,
                                                       ids: dict[str, Any]) -> None:
    for table, column, key in SOURCE_COLUMNS:
        update = sql.SQL("UPDATE {} SET {} = %s WHERE id = %s").format(sql.Identifier(table),
                                                                      sql.Identifier(column))
        for builtin in ("manual", "quickbooks", "jobber", "csv"):
            assert conn.execute(update, (builtin, ids[key])).rowcount == 1, (table, builtin)
        with pytest.raises(errors.ForeignKeyViolation):
            conn.execute(update, ("salesforce", ids[key]))
            pytest.fail(f"{table}.{column} accepted an unregistered source")
    # a third-party connector registers its name: no migration needed
    conn.execute("INSERT INTO customer_sources (name) VALUES ('salesforce')")
    for table, column, key in SOURCE_COLUMNS:
        update = sql.SQL("UPDATE {} SET {} = %s WHERE id = %s").format(sql.Identifier(table),
                                                                      sql.Identifier(column))
        assert conn.execute(update, ("salesforce", ids[key])).rowcount == 1, table


def test_source_names_are_identifier_shaped(conn: psycopg.Connection) -> None:
    with pytest.raises(errors.CheckViolation):
        conn.execute("INSERT INTO customer_sources (name) VALUES ('Bad Name!')")


def test_one_active_enrollment_per_customer_and_sequence(conn: psycopg.Connection,
                                                         ids: dict[str, Any]) -> None:
    with pytest.raises(errors.UniqueViolation):
        conn.execute("INSERT INTO customer_enrollments (sequence_id, customer_id) VALUES (%s, %s)",
                     (ids["sequence"], ids["customer"]))
    conn.execute("UPDATE customer_enrollments SET status = 'completed' WHERE id = %s",
                 (ids["enrollment"],))
    conn.execute("INSERT INTO customer_enrollments (sequence_id, customer_id) VALUES (%s, %s)",
                 (ids["sequence"], ids["customer"]))


def test_trigger_event_dedupe_key_is_unique_per_business(conn: psycopg.Connection,
                                                         ids: dict[str, Any]) -> None:
    insert = ("INSERT INTO trigger_events (business_id, source, event_type, occurred_at, "
              "dedupe_key) VALUES (%s, 'jobber', 'job_completed', now(), %s)")
    conn.execute(insert, (ids["business2"], "k1"))
    with pytest.raises(errors.UniqueViolation):
        conn.execute(insert, (ids["business"], "k1"))


def test_deleting_a_business_removes_its_tenant_rows(conn: psycopg.Connection,
                                                     ids: dict[str, Any]) -> None:
    conn.execute("DELETE FROM businesses WHERE id = %s", (ids["business"],))
    for table in ("customers", "sequences", "connections", "trigger_events", "review_requests"):
        left = conn.execute(sql.SQL("SELECT count(*) FROM {} WHERE business_id = %s").format(
            sql.Identifier(table)), (ids["business"],)).fetchone()[0]
        assert left == 0, table
    # the user's profile survives, detached from the business
    assert conn.execute("SELECT business_id FROM profiles WHERE id = %s",
                        (ids["user"],)).fetchone()[0] is None
    assert uuid.UUID(str(ids["business2"]))
