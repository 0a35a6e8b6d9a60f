"""The sync engine against a real PostgreSQL: upserts, identity, events, cursors, guard."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from blippsync.businesses import add_business
from blippsync.config import Config
from blippsync.connections import ensure_connection
from blippsync.database import Database
from blippsync.plugins import load_plugins
from blippsync.records import Checkpoint, CustomerMerge, CustomerRecord, EventRecord, Rejected
from blippsync.sync import SyncOptions, sync_connection

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
def business(db: Database) -> uuid.UUID:
    return add_business(db, name="Acme Plumbing", owner_email="owner@acme.test",
                        timezone="America/Chicago")


@pytest.fixture
def tiny(tiny_plugin: Any) -> Any:
    return load_plugins().connector("tiny")


def _sync(db: Database, config: Config, business: uuid.UUID, connector: Any, records: list | None
          = None, **opts: Any) -> Any:
    with db.begin() as conn:
        connection = ensure_connection(conn, business, connector.name)
    options = {"records": records} if records is not None else {}
    options.update(opts.pop("options", {}))
    return sync_connection(db, config, connection, connector,
                           SyncOptions(options=options, now=opts.pop("now", NOW), **opts))


def _then(db: Database, config: Config, business: uuid.UUID, connector: Any,
          first: list[CustomerRecord], change: CustomerRecord) -> Any:
    """Sync `first`, then a full pass of one changed record; the second pass's summary."""
    _sync(db, config, business, connector, [*first, Checkpoint({"position": 1})])
    return _sync(db, config, business, connector, [change, Checkpoint({"position": 1})],
                 full=True)


def _rows(db: Database, sql: str, **params: Any) -> list[Any]:
    with db.connect() as conn:
        return list(conn.execute(sa.text(sql), params))


def test_first_sync_creates_then_rerun_is_unchanged(db, config, business, tiny) -> None:
    first = _sync(db, config, business, tiny)
    assert first.ok, first.error
    assert (first.counts.created, first.counts.emitted) == (2, 2)
    second = _sync(db, config, business, tiny, full=True)
    assert (second.counts.created, second.counts.updated, second.counts.unchanged) == (0, 0, 2)
    assert second.counts.duplicate == 2 and second.counts.emitted == 0
    customers = _rows(db, "SELECT name, email, source FROM customers ORDER BY name")
    assert [tuple(r) for r in customers] == [("Ann Tiny", "ann@tiny.test", "tiny"),
                                             ("Bob Tiny", "bob@tiny.test", "tiny")]
    run = _rows(db, "SELECT status, customers_created, events_emitted FROM sync_runs "
                    "ORDER BY started_at LIMIT 1")[0]
    assert tuple(run) == ("succeeded", 2, 2)


def test_normalisation_and_update_counts(db, config, business, tiny) -> None:
    records = [CustomerRecord("c1", name="  Jane   Doe ", email=" Jane@Example.COM ",
                              phone="(212) 555-0123", tags=("vip", "vip", " gold ")),
               Checkpoint({"position": 1})]
    assert _sync(db, config, business, tiny, records).counts.created == 1
    row = _rows(db, "SELECT name, email, phone, tags FROM customers")[0]
    assert tuple(row) == ("Jane Doe", "jane@example.com", "+12125550123", ["vip", "gold"])
    changed = [CustomerRecord("c1", name="Jane Doe", phone="212-555-0199", tags=("new",)),
               Checkpoint({"position": 1})]
    summary = _sync(db, config, business, tiny, changed, full=True)
    assert (summary.counts.updated, summary.counts.unchanged) == (1, 0)
    row = _rows(db, "SELECT email, phone, tags FROM customers")[0]
    assert tuple(row) == ("jane@example.com", "+12125550199", ["vip", "gold", "new"])


def test_invalid_email_kept_out_and_reported(db, config, business, tiny) -> None:
    records = [CustomerRecord("c1", name="No Mail", email="not-an-email", phone="12"),
               Rejected("row has no name", "f.csv:3"), Checkpoint({"position": 1})]
    summary = _sync(db, config, business, tiny, records)
    assert summary.counts.created == 1 and summary.counts.rejected == 1
    assert _rows(db, "SELECT email, phone FROM customers")[0] == (None, None)
    reasons = {(p["field"], p["reason"]) for p in summary.problems}
    assert any(f == "email" and r.startswith("not a valid email address") for f, r in reasons)
    assert ("phone", "not a valid phone number for region US") in reasons
    assert (None, "row has no name") in reasons


def test_same_person_from_two_sources_is_one_customer(db, config, business, tiny) -> None:
    plugins = load_plugins()
    manual = plugins.connector("manual")
    assert _sync(db, config, business, tiny,
                 [CustomerRecord("QB-7", name="Jane Doe", email="Jane.Doe@Example.com"),
                  Checkpoint({"position": 1})]).ok
    summary = _sync(db, config, business, manual, None, options={
        "customer": {"name": "Jane Doe", "email": "jane.doe@EXAMPLE.com", "external_id": "row-9"}})
    assert summary.ok and summary.counts.created == 0 and summary.counts.unchanged == 1
    customers = _rows(db, "SELECT id, email FROM customers")
    assert len(customers) == 1
    identities = _rows(db, "SELECT source, external_id FROM customers WHERE id = :c UNION ALL "
                           "SELECT source, external_id FROM customer_identities "
                           "WHERE customer_id = :c ORDER BY source", c=customers[0].id)
    assert [tuple(i) for i in identities] == [("manual", "row-9"), ("tiny", "QB-7")]


def test_two_records_sharing_an_email_reach_one_customer_and_the_join_is_recorded(
        db, config, business, tiny) -> None:
    records = [CustomerRecord("a", name="Ann", email="shared@x.test", phone="212-555-0101"),
               CustomerRecord("b", name="Bea", email="SHARED@x.test", mobile="212-555-0102"),
               Checkpoint({"position": 1})]
    summary = _sync(db, config, business, tiny, records)
    assert (summary.counts.created, summary.counts.joined, summary.counts.conflicts) == (1, 1, 0)
    rows = _rows(db, "SELECT external_id, name, email, phone, mobile_phone FROM customers")
    # the first record names the customer; the second adds the mobile it lacked
    assert [tuple(r) for r in rows] == [("a", "Ann", "shared@x.test", "+12125550101",
                                         "+12125550102")]
    alias = _rows(db, "SELECT external_id, relation, label FROM customer_identities")
    assert [tuple(a) for a in alias] == [("b", "shared_email", "Bea")]
    joined = _rows(db, "SELECT external_id, kind, value FROM identity_conflicts")
    assert [tuple(c) for c in joined] == [("b", "merged", "shared@x.test")]
    assert any(p.get("kind") == "merged" and p["external_id"] == "b" for p in summary.problems)
    # a second pass changes nothing and records nothing again
    again = _sync(db, config, business, tiny, records, full=True)
    assert (again.counts.created, again.counts.updated, again.counts.joined) == (0, 0, 0)


def test_a_record_that_stops_sharing_the_email_becomes_its_own_customer(
        db, config, business, tiny) -> None:
    summary = _then(db, config, business, tiny,
                    [CustomerRecord("a", name="Ann", email="office@x.test"),
                     CustomerRecord("b", name="Bea", email="office@x.test")],
                    CustomerRecord("b", name="Bea", email="bea@x.test"))
    assert summary.counts.created == 1
    rows = _rows(db, "SELECT external_id, name, email FROM customers ORDER BY external_id")
    assert [tuple(r) for r in rows] == [("a", "Ann", "office@x.test"), ("b", "Bea", "bea@x.test")]
    assert _rows(db, "SELECT * FROM customer_identities") == []
    (join,) = _rows(db, "SELECT kind, resolution FROM identity_conflicts")
    assert tuple(join) == ("merged", "kept_apart")


def test_a_site_is_filed_under_its_parent_or_reported_when_the_parent_is_unknown(
        db, config, business, tiny) -> None:
    summary = _sync(db, config, business, tiny, [
        CustomerRecord("s1", name="55 Twin Lane", email="site@x.test", parent_external_id="p"),
        CustomerRecord("p", name="Sasha", email="sasha@x.test"),
        CustomerRecord("s2", name="Lost Site", parent_external_id="nobody"),
        Checkpoint({"position": 1})])
    assert (summary.counts.created, summary.counts.rejected) == (1, 1)
    assert [tuple(r) for r in _rows(db, "SELECT external_id, email FROM customers")] == [
        ("p", "sasha@x.test")]  # a site's own email never lands on the person
    assert [tuple(r) for r in _rows(db, "SELECT external_id, relation, label "
                                        "FROM customer_identities")] == [
        ("s1", "site", "55 Twin Lane")]
    assert any("Lost Site" in p["reason"] and "not known" in p["reason"]
               for p in summary.problems)


def test_a_customer_deleted_and_created_again_at_the_source_comes_back(
        db, config, business, tiny) -> None:
    _sync(db, config, business, tiny, [CustomerRecord("old", name="Ann", email="ann@x.test"),
                                        Checkpoint({"position": 1})])
    _sync(db, config, business, tiny, [CustomerRecord("old", deleted=True),
                                        Checkpoint({"position": 1})], full=True)
    summary = _sync(db, config, business, tiny, [
        CustomerRecord("new", name="Ann Lee", email="ANN@x.test"), Checkpoint({"position": 1})],
        full=True)
    assert (summary.counts.created, summary.counts.joined) == (0, 0)
    (c,) = _rows(db, "SELECT name, email, deleted_at FROM customers")
    assert (c.name, c.email, c.deleted_at) == ("Ann Lee", "ann@x.test", None)
    assert [tuple(i) for i in _rows(db, "SELECT external_id, relation FROM "
                                        "customer_identities")] == [("new", "alias")]


def test_known_customer_taking_anothers_email_is_a_conflict_not_an_overwrite(
        db, config, business, tiny) -> None:
    summary = _then(db, config, business, tiny,
                    [CustomerRecord("a", name="Ann", email="ann@x.test"),
                     CustomerRecord("b", name="Bea", email="bea@x.test")],
                    CustomerRecord("b", name="Bea", email="ANN@x.test"))
    assert summary.counts.conflicts == 1
    rows = _rows(db, "SELECT external_id, email FROM customers ORDER BY external_id")
    assert [tuple(r) for r in rows] == [("a", "ann@x.test"), ("b", "bea@x.test")]
    conflict = _rows(db, "SELECT external_id, kind, field, value FROM identity_conflicts")
    assert [tuple(c) for c in conflict] == [("b", "conflict", "email", "ann@x.test")]


def test_two_known_customers_taking_one_new_email_in_one_batch_do_not_both_get_it(
        db, config, business, tiny) -> None:
    """Nobody holds the address yet, so only the batch itself can see the clash: the first
    record of the batch takes it, the second keeps its own and the clash is recorded."""
    _sync(db, config, business, tiny, [CustomerRecord("a", name="Ann", email="ann@x.test"),
                                       CustomerRecord("b", name="Bea", email="bea@x.test"),
                                       Checkpoint({"position": 1})])
    summary = _sync(db, config, business, tiny, [
        CustomerRecord("a", name="Ann", email="office@x.test"),
        CustomerRecord("b", name="Bea", email="Office@x.test"), Checkpoint({"position": 2})],
        full=True)
    rows = _rows(db, "SELECT external_id, email FROM customers ORDER BY external_id")
    assert [tuple(r) for r in rows] == [("a", "office@x.test"), ("b", "bea@x.test")]
    assert summary.counts.conflicts == 1
    conflict = _rows(db, "SELECT external_id, kind, value FROM identity_conflicts")
    assert [tuple(c) for c in conflict] == [("b", "conflict", "office@x.test")]


def test_backfill_guard_marks_old_events_historical(db, config, business, tiny) -> None:
    records = [CustomerRecord("c1", name="Old"),
               EventRecord("job_completed", "tiny:job:old", "c1", NOW - timedelta(days=40)),
               EventRecord("job_completed", "tiny:job:new", "c1", NOW - timedelta(hours=2)),
               EventRecord("job_completed", "tiny:job:new", "c1", NOW - timedelta(hours=2)),
               Checkpoint({"position": 1})]
    summary = _sync(db, config, business, tiny, records)
    assert (summary.counts.emitted, summary.counts.historical,
            summary.counts.duplicate) == (1, 1, 1)
    rows = _rows(db, "SELECT dedupe_key, historical, routing_state, customer_id IS NOT NULL "
                     "FROM trigger_events ORDER BY dedupe_key")
    assert [tuple(r) for r in rows] == [("tiny:job:new", False, "pending", True),
                                        ("tiny:job:old", True, "historical", True)]


def test_failure_keeps_committed_batches_and_resumes(db, config, business, tiny) -> None:
    records = []
    for i in range(1, 7):
        records += [CustomerRecord(f"c{i}", name=f"Customer {i}"), Checkpoint({"position": i})]
    small = config.with_values(sync__batch_size=2)
    failed = _sync(db, small, business, tiny, records, options={"crash_after_position": 4})
    assert failed.error == "tiny: the remote said no" or "connection lost" in failed.error
    committed = _rows(db, "SELECT cursor FROM connections WHERE connector = 'tiny'")[0][0]
    assert 1 <= committed["position"] <= 4
    assert _rows(db, "SELECT status FROM sync_runs")[0][0] == "failed"
    assert _rows(db, "SELECT consecutive_failures FROM connections")[0][0] == 1
    resumed = _sync(db, small, business, tiny, records)
    assert resumed.ok
    names = [r[0] for r in _rows(db, "SELECT external_id FROM customers ORDER BY external_id")]
    assert names == [f"c{i}" for i in range(1, 7)]
    assert _rows(db, "SELECT cursor FROM connections")[0][0] == {"position": 6}


def test_dry_run_writes_nothing(db, config, business, tiny) -> None:
    summary = _sync(db, config, business, tiny, dry_run=True)
    assert summary.ok and summary.counts.created == 2 and summary.run_id is None
    assert _rows(db, "SELECT count(*) FROM customers")[0][0] == 0
    assert _rows(db, "SELECT count(*) FROM trigger_events")[0][0] == 0
    assert _rows(db, "SELECT count(*) FROM sync_runs")[0][0] == 0
    assert _rows(db, "SELECT cursor FROM connections")[0][0] is None


def test_merge_moves_identity_and_opt_out(db, config, business, tiny) -> None:
    records = [CustomerRecord("keep", name="Keep", email="keep@x.test"),
               CustomerRecord("gone", name="Gone", email="gone@x.test"),
               Checkpoint({"position": 1})]
    assert _sync(db, config, business, tiny, records).ok
    with db.begin() as conn:
        conn.execute(sa.text("UPDATE customers SET opted_out = true WHERE external_id = 'gone'"))
    summary = _sync(db, config, business, tiny, [CustomerMerge("keep", "gone"),
                                                 Checkpoint({"position": 2})], full=True)
    assert summary.counts.merged == 1
    keep, gone = _rows(db, "SELECT id, opted_out, merged_into_id, deleted_at IS NOT NULL "
                           "FROM customers ORDER BY external_id DESC")
    assert keep.opted_out is True and gone.merged_into_id == keep.id
    owners = {r[0] for r in _rows(db, "SELECT customer_id FROM customer_identities")}
    assert owners == {keep.id}


def test_connector_failure_is_recorded_and_other_state_kept(db, config, business, tiny) -> None:
    summary = _sync(db, config, business, tiny, options={"fail": True})
    assert summary.error == "tiny: the remote said no"
    row = _rows(db, "SELECT last_error, consecutive_failures FROM connections")[0]
    assert tuple(row) == ("tiny: the remote said no", 1)


def test_a_repeated_id_in_one_batch_keeps_the_last_record(db, config, business, tiny) -> None:
    records = [CustomerRecord("a", name="First A", email="a@x.test"),
               CustomerRecord("b", name="Bea", email="bea@x.test"),
               CustomerRecord("a", name="Second A", email="a@x.test"),
               CustomerRecord("c", name="Cy", email="cy@x.test"),
               Checkpoint({"position": 1})]
    summary = _sync(db, config, business, tiny, records)
    assert summary.ok and summary.counts.created == 3 and summary.counts.conflicts == 0
    rows = _rows(db, "SELECT external_id, name FROM customers ORDER BY external_id")
    assert [tuple(r) for r in rows] == [("a", "Second A"), ("b", "Bea"), ("c", "Cy")]


def test_log_lines_carry_business_connection_and_run(db, config, business, tiny,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    from blippsync.logs import _ContextFilter

    caplog.handler.addFilter(_ContextFilter())
    with caplog.at_level("INFO"):
        summary = _sync(db, config, business, tiny, options={"fail": True})
    line = next(r for r in caplog.records if r.getMessage() == "tiny: replaying records")
    assert line.context == {"business_id": str(business),
                            "connection_id": str(summary.connection_id),
                            "run_id": str(summary.run_id)}
    failure = next(r for r in caplog.records if "sync of tiny failed" in r.getMessage())
    assert failure.context["run_id"] == str(summary.run_id)
