"""A tiny third-party connector, installed in tests through a real entry point
(tests/plugins/tiny/tiny_connector-1.0.dist-info). It replays `ctx.options["records"]`,
resuming after the checkpoint in ctx.cursor, or fails on demand."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from blippsync.connector import ConnectorContext
from blippsync.errors import ConnectorError
from blippsync.hookspecs import hookimpl
from blippsync.records import Checkpoint, CustomerRecord, EventRecord, Record

DEFAULT_CUSTOMERS = [("t1", "Ann Tiny", "ann@tiny.test"), ("t2", "Bob Tiny", "bob@tiny.test")]


class TinyConnector:
    name = "tiny"
    version = "1.0"
    events = ("job_completed",)
    needs_oauth = False

    def sync(self, ctx: ConnectorContext) -> Iterator[Record]:
        ctx.log.info("tiny: replaying records")
        if ctx.options.get("fail") or ctx.settings.get("fail"):
            raise ConnectorError("tiny: the remote said no")
        records = ctx.options.get("records")
        if records is None:
            now = ctx.now or datetime.now(UTC)
            records = []
            for i, (ext, name, email) in enumerate(DEFAULT_CUSTOMERS):
                records.append(CustomerRecord(ext, name=name, email=email))
                records.append(EventRecord("job_completed", f"tiny:job:{ext}", ext,
                                           now - timedelta(hours=1)))
                records.append(Checkpoint({"position": i + 1}))
        start = (ctx.cursor or {}).get("position", 0)
        position = 0
        for record in records:
            if isinstance(record, Checkpoint):
                position = record.cursor["position"]
                if position > start:
                    yield record
            elif position >= start:
                yield record
            crash_at = ctx.options.get("crash_after_position")
            if crash_at is not None and position >= crash_at:
                raise ConnectorError("tiny: connection lost")


@hookimpl
def register_connectors(register):  # type: ignore[no-untyped-def]
    register(TinyConnector())


@hookimpl
def register_commands(cli):  # type: ignore[no-untyped-def]
    import click

    @cli.command("tiny-hello")
    @click.option("--name", default="world")
    def tiny_hello(name: str) -> None:
        """A command added by the tiny plugin."""
        click.echo(f"hello {name} from tiny")
