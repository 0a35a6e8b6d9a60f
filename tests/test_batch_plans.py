"""A batch's cost must not grow with what the business already has stored.

Imports turned quadratic when a statement of the batch was planned as "scan all the
business's customers, compare each with every staged row": the planner picks that
whenever it believes the business holds a row or two, which is exactly the case while a
business grows through its first import (its statistics lag). So this test builds that
situation on purpose (statistics taken while the business was empty, autovacuum off,
then a history much larger than the batch) and runs one real batch of every kind of
record under EXPLAIN ANALYZE: no statement may touch more rows than a small multiple of
the batch. The same holds with fresh statistics. Not a timing test: it counts rows.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from blippsync.batch_writer import Batch, BatchTarget, write_batch
from blippsync.database import Database
from blippsync.records import CustomerRecord, EventRecord
from blippsync.testing.plans import capture_plans

HISTORY = 10_000   # customers (and one event each) already stored for the business
PER_KIND = 20      # staged records of each kind in the batch
# Rows a statement may touch per staged record: a few index probes, the staged row
# itself, a sort. A plan that scans the business once per batch touches >= HISTORY.
ROWS_PER_RECORD = 6
TABLES = ("customers", "customer_identities", "trigger_events")


def _prepare(db: Database, *, fresh_statistics: bool) -> tuple[uuid.UUID, uuid.UUID]:
    with db.begin() as c:
        q = lambda sql, **p: c.execute(sa.text(sql), p)  # noqa: E731
        other = q("INSERT INTO businesses (name, created_by) VALUES ('Other', 'o@example.com') "
                  "RETURNING id").scalar()
        q("INSERT INTO customers (business_id, source, external_id, name) "
          "SELECT :b, 'csv', 'O' || g, 'Other' FROM generate_series(1, 500) g", b=other)
        for table in TABLES:  # what the planner knows: our business does not exist yet
            q(f"ALTER TABLE public.{table} SET (autovacuum_enabled = false)")
            q(f"ANALYZE public.{table}")
        business = q("INSERT INTO businesses (name, created_by) VALUES ('B', 'b@example.com') "
                     "RETURNING id").scalar()
        connection = q("INSERT INTO connections (business_id, connector) VALUES (:b, 'csv') "
                       "RETURNING id", b=business).scalar()
        q("INSERT INTO customers (business_id, source, external_id, name, email) "
          "SELECT :b, 'csv', 'C' || g, 'Jo Smith', 'jo' || g || '@example.com' "
          "FROM generate_series(0, :n - 1) g", b=business, n=HISTORY)
        # people another source brought: their emails arrive later from the csv
        q("INSERT INTO customers (business_id, source, external_id, name, email) "
          "SELECT :b, 'manual', 'M' || g, 'Manual', 'shared' || g || '@example.com' "
          "FROM generate_series(0, :n - 1) g", b=business, n=2 * PER_KIND)
        # csv ids known only as aliases (of the second half of those customers)
        q("INSERT INTO customer_identities (business_id, source, external_id, customer_id) "
          "SELECT :b, 'csv', 'A' || (substr(external_id, 2)::int - :n), id FROM customers "
          "WHERE business_id = :b AND source = 'manual' AND substr(external_id, 2)::int >= :n",
          b=business, n=PER_KIND)
        # and the history of identities: each csv customer also known to QuickBooks
        q("INSERT INTO customer_identities (business_id, source, external_id, customer_id) "
          "SELECT :b, 'quickbooks', 'Q' || external_id, id FROM customers "
          "WHERE business_id = :b AND source = 'csv'", b=business)
        q("INSERT INTO trigger_events (business_id, connection_id, source, event_type, "
          "customer_id, external_customer_id, occurred_at, dedupe_key, historical, "
          "routing_state) SELECT :b, :c, 'csv', 'job_completed', id, external_id, "
          "now() - interval '400 days', 'csv' || chr(58) || external_id || chr(58) || 'old', "
          "true, 'historical' "
          "FROM customers WHERE business_id = :b AND source = 'csv'", b=business, c=connection)
    if fresh_statistics:
        with db.connect() as c:
            for table in TABLES:
                c.execute(sa.text(f"ANALYZE public.{table}"))
            c.commit()
    return business, connection


def _batch(target: BatchTarget) -> Batch:
    batch = Batch()
    when = target.now - timedelta(days=1)

    def event(external_id: str, key: str) -> None:
        batch.add_event(EventRecord(event_type="job_completed",
                                    dedupe_key=f"csv:{external_id}:{key}",
                                    customer_external_id=external_id, occurred_at=when), target)

    for i in range(PER_KIND):
        # new customers with their first job
        batch.add_customer(CustomerRecord(external_id=f"N{i}", name="New Person",
                                          email=f"new{i}@example.com"), "US")
        event(f"N{i}", "new")
        # known customers, half of them changed, with an old job again and a new one
        batch.add_customer(CustomerRecord(external_id=f"C{i}",
                                          name="Jo Smythe" if i % 2 else "Jo Smith",
                                          email=f"jo{i}@example.com"), "US")
        event(f"C{i}", "old")
        event(f"C{i}", "new")
        # new ids whose email another source's customer has: matched, aliased
        batch.add_customer(CustomerRecord(external_id=f"X{i}", name="Same Person",
                                          email=f"shared{i}@example.com"), "US")
        event(f"X{i}", "new")
        # jobs of customers known only through an alias
        event(f"A{i}", "new")
        # a new id taking a known customer's email: a conflict, recorded
        batch.add_customer(CustomerRecord(external_id=f"D{i}", name="Clash",
                                          email=f"jo{HISTORY - 1 - i}@example.com"), "US")
    return batch


@pytest.mark.parametrize("fresh_statistics", [False, True],
                         ids=["stale-stats", "fresh-stats"])
def test_no_statement_of_a_batch_scales_with_stored_history(db: Database,
                                                            fresh_statistics: bool) -> None:
    business, connection = _prepare(db, fresh_statistics=fresh_statistics)
    target = BatchTarget(business_id=business, source="csv", connection_id=connection,
                         run_id=None, country="US", horizon=timedelta(days=14),
                         now=datetime.now(UTC))
    batch = _batch(target)
    staged = len(batch)
    with db.connect() as conn, conn.begin(), capture_plans(conn) as plans:
        counts = write_batch(conn, target, batch, None)

    # the batch did what it should (so the plans below are of real work)
    # N ids are new customers, half of C changed, X matched by email; what D (a new id with
    # a known customer's email) becomes is identity policy, not this test's concern
    assert counts.created >= PER_KIND and counts.updated >= PER_KIND // 2 + PER_KIND
    assert counts.emitted == 4 * PER_KIND and counts.duplicate == PER_KIND
    with db.connect() as conn:
        aliased = conn.execute(sa.text(
            "SELECT count(*) FROM trigger_events e JOIN customer_identities i "
            "ON i.customer_id = e.customer_id AND i.external_id = e.external_customer_id "
            "WHERE e.business_id = :b AND e.dedupe_key LIKE :key"),
            {"b": business, "key": "csv:A%:new"}).scalar()
    assert aliased == PER_KIND

    assert len(plans) >= 10
    limit = ROWS_PER_RECORD * staged
    assert limit < HISTORY  # else a scan of the business would pass unnoticed
    heavy = {p.name: int(p.rows_touched) for p in plans if p.rows_touched > limit}
    assert not heavy, f"statements touching more than {limit} rows for {staged} records: {heavy}"
