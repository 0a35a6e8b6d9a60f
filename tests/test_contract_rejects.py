"""The contract suite can fail: connectors broken on purpose, one way each, and the suite
test that must reject each of them. An honest connector of the same shape passes them all.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from blippsync.connector import ConnectorContext
from blippsync.errors import ConfigError, ConnectorError
from blippsync.hookspecs import hookimpl
from blippsync.records import Checkpoint, CustomerRecord, EventRecord, Record
from blippsync.testing.contract import ConnectorContract, make_context

WHEN = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
ROWS = [("r1", "Ann"), ("r2", "Bob"), ("r3", "Cy")]


class Honest:
    """Three customers with a job each, a checkpoint after each, resuming after `position`."""

    name = "honest"
    version = "1.0"
    events = ("job_completed",)
    needs_oauth = False

    def sync(self, ctx: ConnectorContext) -> Iterator[Record]:
        if ctx.settings.get("fail"):
            raise ConnectorError("honest: the remote said no")
        start = int((ctx.cursor or {}).get("position", 0))
        for position, (ext, name) in enumerate(ROWS[start:], start + 1):
            yield from self.rows(ext, name)
            yield Checkpoint({"position": position})

    def rows(self, ext: str, name: str) -> Iterator[Record]:
        yield CustomerRecord(ext, name=name)
        yield EventRecord("job_completed", f"{self.name}:{ext}", ext, WHEN)


class IgnoresCursor(Honest):
    def sync(self, ctx: ConnectorContext) -> Iterator[Record]:
        yield from super().sync(make_context(settings=ctx.settings))  # always from the start


class ReplaysCoveredRecord(Honest):
    """Resumes one record too early (an inclusive boundary): a covered record comes again."""

    def sync(self, ctx: ConnectorContext) -> Iterator[Record]:
        start = int((ctx.cursor or {}).get("position", 0))
        cursor = {"position": max(0, start - 1)} if start else None
        yield from super().sync(make_context(cursor=cursor, settings=ctx.settings))


class LosesRecordOnResume(Honest):
    def sync(self, ctx: ConnectorContext) -> Iterator[Record]:
        start = int((ctx.cursor or {}).get("position", 0))
        cursor = {"position": start + 1} if start else None
        yield from super().sync(make_context(cursor=cursor, settings=ctx.settings))


class NoFinalCheckpoint(Honest):
    def sync(self, ctx: ConnectorContext) -> Iterator[Record]:
        records = list(super().sync(ctx))
        yield from records[:-1]
        yield from self.rows("r4", "Dee")  # after the last checkpoint: never covered


class SwallowsErrors(Honest):
    def sync(self, ctx: ConnectorContext) -> Iterator[Record]:
        try:
            yield from super().sync(ctx)
        except ConnectorError:
            yield Checkpoint({})  # the failure disappears


class RaisesBareException(Honest):
    def sync(self, ctx: ConnectorContext) -> Iterator[Record]:
        if ctx.settings.get("fail"):
            raise RuntimeError("KeyError deep inside")
        yield from super().sync(ctx)


class UndeclaredEvent(Honest):
    def rows(self, ext: str, name: str) -> Iterator[Record]:
        yield CustomerRecord(ext, name=name)
        yield EventRecord("invoice_paid", f"{self.name}:{ext}", ext, WHEN)


class NaiveTimestamp(Honest):
    def rows(self, ext: str, name: str) -> Iterator[Record]:
        yield CustomerRecord(ext, name=name)
        yield EventRecord("job_completed", f"{self.name}:{ext}", ext, WHEN.replace(tzinfo=None))


class Nondeterministic(Honest):
    def rows(self, ext: str, name: str) -> Iterator[Record]:
        yield CustomerRecord(ext, name=f"{name} {random.random()}")


class Plugin:
    def __init__(self, connector: Any) -> None:
        self.connector = connector

    @hookimpl
    def register_connectors(self, register: Any) -> None:
        register(self.connector)


def contract_for(connector: Honest, failing_context_breaks: bool = False) -> ConnectorContract:
    class Contract(ConnectorContract):
        connector_name = connector.name
        extra_plugins = (("under_test", Plugin(connector)),)

        def make_context(self, tmp_path: Path, cursor: Any = None) -> ConnectorContext:
            return make_context(cursor=cursor)

        def make_failing_context(self, tmp_path: Path) -> ConnectorContext:
            if failing_context_breaks:  # a broken fixture, not a failing connector
                raise ConfigError("the test's own fixture is broken")
            return make_context(settings={"fail": True})

    return Contract()


SUITE = ["test_registered_through_entry_point", "test_record_shapes", "test_cursor_round_trip",
         "test_idempotent_rerun", "test_errors_are_reported_as_blippsync_errors"]


def _named(cls: type[Honest]) -> Honest:
    connector = cls()
    connector.name = cls.__name__.lower()
    return connector


@pytest.mark.parametrize("test", SUITE)
def test_an_honest_connector_passes(tmp_path: Path, test: str) -> None:
    getattr(contract_for(_named(Honest)), test)(**_args(test, tmp_path))


BROKEN = [
    (IgnoresCursor, "test_cursor_round_trip", "must yield exactly"),
    (ReplaysCoveredRecord, "test_cursor_round_trip", "must yield exactly"),
    (LosesRecordOnResume, "test_cursor_round_trip", "must yield exactly"),
    (NoFinalCheckpoint, "test_cursor_round_trip", "after the last checkpoint"),
    (SwallowsErrors, "test_errors_are_reported_as_blippsync_errors", "did not fail"),
    (RaisesBareException, "test_errors_are_reported_as_blippsync_errors",
     "not as a blippsync.errors.BlippsyncError"),
    (UndeclaredEvent, "test_record_shapes", "is not declared"),
    (NaiveTimestamp, "test_record_shapes", "must be aware"),
    (Nondeterministic, "test_idempotent_rerun", "the same input"),
]


@pytest.mark.parametrize(("cls", "test", "message"), BROKEN,
                         ids=[cls.__name__ for cls, _t, _m in BROKEN])
def test_the_suite_rejects_a_broken_connector(tmp_path: Path, cls: type[Honest], test: str,
                                              message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        getattr(contract_for(_named(cls)), test)(**_args(test, tmp_path))


def test_a_broken_failing_context_fixture_is_not_a_pass(tmp_path: Path) -> None:
    contract = contract_for(_named(Honest), failing_context_breaks=True)
    with pytest.raises(ConfigError, match="fixture is broken"):
        contract.test_errors_are_reported_as_blippsync_errors(tmp_path)


def _args(test: str, tmp_path: Path) -> dict[str, Any]:
    return {} if test == "test_registered_through_entry_point" else {"tmp_path": tmp_path}
