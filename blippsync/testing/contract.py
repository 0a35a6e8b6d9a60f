"""The connector contract suite: any connector package runs it against itself.

Subclass `ConnectorContract` in a test module, name the connector and say how to build
a context that works and one that must fail; pytest collects the inherited tests:

    from blippsync.testing.contract import ConnectorContract, make_context

    class TestMyConnector(ConnectorContract):
        connector_name = "myconnector"

        def make_context(self, tmp_path, cursor=None):
            return make_context(cursor=cursor, settings={"base_url": ...})

        def make_failing_context(self, tmp_path):
            return make_context(settings={"base_url": "http://127.0.0.1:9"})

The suite needs no database: connectors are pure producers.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from blippsync.connector import Connector, ConnectorContext, TokenProvider
from blippsync.errors import BlippsyncError
from blippsync.plugins import load_plugins
from blippsync.records import (
    Checkpoint,
    CustomerMerge,
    CustomerRecord,
    EventRecord,
    Note,
    Rejected,
    SubscriptionStatus,
)

RECORD_TYPES = (CustomerRecord, EventRecord, CustomerMerge, Rejected, Note, SubscriptionStatus,
                Checkpoint)
FACT_TYPES = (CustomerRecord, EventRecord, SubscriptionStatus)  # what a pass is for


def make_context(*, cursor: Mapping[str, Any] | None = None, settings: Mapping[str, Any] | None
                 = None, options: Mapping[str, Any] | None = None, full: bool = False,
                 tokens: TokenProvider | None = None, credentials: Mapping[str, Any] | None = None,
                 http: httpx.Client | None = None, account_id: str = "",
                 now: datetime | None = None) -> ConnectorContext:
    """A context for running a connector outside the daemon (tests, notebooks)."""
    return ConnectorContext(
        business_id=uuid.UUID(int=1), connection_id=uuid.UUID(int=2), account_id=account_id,
        settings=dict(settings or {}), cursor=cursor, http=http or httpx.Client(timeout=10),
        log=logging.getLogger("blippsync.contract"), full=full, credentials=credentials or {},
        tokens=tokens, options=dict(options or {}), now=now)


class ConnectorContract:
    """Inherited tests every connector must pass. Override the three members below."""

    connector_name: str = ""
    # True for a connector fed per invocation (a file, a command's options) rather than by a
    # remote source: resuming from its final cursor replays that input in full. Every
    # earlier checkpoint must still resume exactly.
    final_cursor_replays_input: bool = False
    # (name, plugin) pairs registered besides the installed entry points: for testing the
    # suite itself against connectors it must reject.
    extra_plugins: tuple[tuple[str, object], ...] = ()

    def make_context(self, tmp_path: Path, cursor: Mapping[str, Any] | None = None
                     ) -> ConnectorContext:
        raise NotImplementedError

    def make_failing_context(self, tmp_path: Path) -> ConnectorContext:
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------------------

    def _connector(self) -> Any:
        plugins = load_plugins(extra=self.extra_plugins)
        assert self.connector_name in plugins.connectors, (
            f"{self.connector_name!r} is not registered through the blippsync entry points; "
            f"problems: {plugins.problems}")
        return plugins.connectors[self.connector_name].connector

    def _run(self, tmp_path: Path, cursor: Mapping[str, Any] | None = None) -> list[Any]:
        return list(self._connector().sync(self.make_context(tmp_path, cursor)))

    # -- the contract ----------------------------------------------------------------------

    def test_registered_through_entry_point(self) -> None:
        connector = self._connector()
        assert isinstance(connector, Connector)
        assert connector.name == self.connector_name
        assert isinstance(connector.version, str) and connector.version
        assert all(isinstance(e, str) and e for e in connector.events)
        info = load_plugins(extra=self.extra_plugins).connectors[self.connector_name].describe()
        assert info["package"] and info["events"] == list(connector.events)

    def test_record_shapes(self, tmp_path: Path) -> None:
        records = self._run(tmp_path)
        assert records, "the working context must produce at least one record"
        connector = self._connector()
        for record in records:
            assert isinstance(record, RECORD_TYPES), f"{record!r} is not a record type"
            if isinstance(record, CustomerRecord):
                assert isinstance(record.external_id, str) and record.external_id.strip()
            elif isinstance(record, EventRecord):
                assert record.event_type in connector.events, (
                    f"event {record.event_type!r} is not declared in {connector.name}.events")
                assert record.occurred_at.tzinfo is not None, "occurred_at must be aware"
                assert record.dedupe_key and record.customer_external_id
            elif isinstance(record, SubscriptionStatus):
                assert record.as_of.tzinfo is not None, "as_of must be aware"
            elif isinstance(record, Checkpoint):
                json.dumps(record.cursor)  # must be JSON-serialisable
        assert any(isinstance(r, FACT_TYPES) for r in records), (
            "the working context must produce customers, events or a billing status")

    def test_cursor_round_trip(self, tmp_path: Path) -> None:
        """Resuming from any checkpoint's cursor (through JSON, as it is stored) yields
        exactly what the first run yielded after that checkpoint: nothing is lost, nothing
        covered by the cursor comes again."""
        records = self._run(tmp_path)
        positions = [i for i, r in enumerate(records) if isinstance(r, Checkpoint)]
        assert positions, "a run must end with a Checkpoint"
        assert not [r for r in records[positions[-1]:] if isinstance(r, FACT_TYPES)], (
            "records after the last checkpoint would never be covered")
        for position in positions:
            cursor = json.loads(json.dumps(records[position].cursor))
            again = self._run(tmp_path, cursor)
            replay = self.final_cursor_replays_input and position == positions[-1]
            expected = [_fact(r) for r in records[0 if replay else position + 1:]
                        if _is_fact(r)]
            assert [_fact(r) for r in again if _is_fact(r)] == expected, (
                f"resuming from {cursor!r} must yield exactly the {len(expected)} records "
                "that followed it")

    def test_idempotent_rerun(self, tmp_path: Path) -> None:
        first = [_fact(r) for r in self._run(tmp_path) if not isinstance(r, Checkpoint)]
        second = [_fact(r) for r in self._run(tmp_path) if not isinstance(r, Checkpoint)]
        assert first == second, "the same input must produce the same records"

    def test_errors_are_reported_as_blippsync_errors(self, tmp_path: Path) -> None:
        """A failure of the remote or the input surfaces as a BlippsyncError that says what
        went wrong (the fixture that builds the failing context must itself work)."""
        connector = self._connector()
        ctx = self.make_failing_context(tmp_path)
        try:
            list(connector.sync(ctx))
        except BlippsyncError as exc:
            assert str(exc).strip(), "the error must say what went wrong"
        except Exception as exc:
            raise AssertionError(f"the failure surfaced as {type(exc).__name__}: {exc}, not "
                                 "as a blippsync.errors.BlippsyncError") from exc
        else:
            raise AssertionError("the failing context did not fail")


def _is_fact(record: Any) -> bool:
    return isinstance(record, CustomerRecord | EventRecord | CustomerMerge | SubscriptionStatus)


def _fact(record: Any) -> Any:
    if isinstance(record, CustomerRecord):
        return ("customer", record.external_id, record.name, record.email, record.phone)
    if isinstance(record, EventRecord):
        return ("event", record.dedupe_key)
    if isinstance(record, SubscriptionStatus):  # as_of is when it was read: not the fact
        return ("subscription", record.subscription_id, record.status)
    return (type(record).__name__, repr(record))
