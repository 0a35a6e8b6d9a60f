"""Turning a connector's record stream into committed batches.

Each batch commits its customers, its events and the latest checkpoint seen in one
transaction; batches are written on a second thread while the connector produces the
next one, so parsing and normalising in Python overlap with PostgreSQL merging.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from blippsync.batch_writer import MAX_REPORTED_PROBLEMS, Batch, BatchTarget, write_batch
from blippsync.errors import ConnectorError
from blippsync.records import (
    Checkpoint,
    CustomerMerge,
    CustomerRecord,
    EventRecord,
    Note,
    Record,
    Rejected,
    SubscriptionStatus,
)
from blippsync.retrying import RetryableFault, RetryPolicy, call_with_retries
from blippsync.sync_summary import ProgressCallback, SyncSummary

log = logging.getLogger(__name__)
BATCH_RACE_POLICY = RetryPolicy(attempts=3)  # a race is retried at once, twice at most


def consume_records(conn: sa.Connection, target: BatchTarget, records: Iterable[Record],
                    summary: SyncSummary, *, batch_size: int, dry_run: bool = False,
                    progress: ProgressCallback | None = None,
                    stop: threading.Event | None = None) -> None:
    """Write `records` batch by batch; each batch commits with the latest checkpoint seen
    (in a dry run, inside the caller's one open transaction, which is rolled back). When
    `stop` is set the pass ends at the next checkpoint, everything before it committed.
    When the connector fails, the records it produced are still written, so a failed pass
    keeps every page it read.

    Batches are written on a second thread while the connector produces the next one, so
    parsing and normalising in Python overlap with PostgreSQL merging the previous batch.
    """
    writer = _BatchWriterThread(conn, target, summary, dry_run, progress)
    try:
        batch = Batch()
        cursor: Mapping[str, Any] | None = None
        for record in records:
            summary.records += 1
            if isinstance(record, CustomerRecord):
                batch.add_customer(record, target.country)
            elif isinstance(record, EventRecord):
                batch.add_event(record, target)
            elif isinstance(record, Checkpoint):
                cursor = _checked_cursor(record.cursor)
                if stop is not None and stop.is_set():
                    summary.interrupted = True
                    break
                if len(batch) < batch_size:
                    continue
            elif isinstance(record, Rejected):
                batch.reject(record)
            elif isinstance(record, Note):
                batch.note(record)
            elif isinstance(record, CustomerMerge):
                batch.merges.append(record)
            elif isinstance(record, SubscriptionStatus):
                batch.add_status(record)
            else:
                raise ConnectorError(f"connector {target.source} yielded "
                                     f"{type(record).__name__}, which is not a record type")
            if len(batch) >= batch_size:
                writer.submit(batch, cursor)
                batch, cursor = Batch(), None
        if len(batch) or batch.rejected or cursor is not None:
            writer.submit(batch, cursor)
    except Exception:
        # the connector failed mid-pass: what it produced is kept, with the last checkpoint
        # it reached (records past that checkpoint are read again next time, idempotently)
        if writer.healthy and (len(batch) or batch.rejected or cursor is not None):
            writer.submit(batch, cursor)
        raise
    finally:
        writer.close()  # waits for the batch in hand; re-raises the writer's failure


class _BatchWriterThread:
    """One batch in flight at a time, written in order on its own thread."""

    def __init__(self, conn: sa.Connection, target: BatchTarget, summary: SyncSummary,
                 dry_run: bool, progress: ProgressCallback | None):
        self._args = (conn, target, summary, dry_run, progress)
        self._queue: queue.Queue[tuple[Batch, Mapping[str, Any] | None] | None] = \
            queue.Queue(maxsize=1)
        self._failure: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="batch-writer", daemon=True)
        self._thread.start()

    @property
    def healthy(self) -> bool:
        return self._failure is None

    def submit(self, batch: Batch, cursor: Mapping[str, Any] | None) -> None:
        self._raise_failure()
        self._queue.put((batch, cursor))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            if self._failure is not None:
                continue  # drain: the producer learns of the failure on its next submit
            try:
                conn, target, summary, dry_run, progress = self._args
                _flush(conn, target, item[0], item[1], summary, dry_run, progress)
            except BaseException as exc:  # handed to the producer thread
                self._failure = exc


def _flush(conn: sa.Connection, target: BatchTarget, batch: Batch,
           cursor: Mapping[str, Any] | None, summary: SyncSummary, dry_run: bool,
           progress: ProgressCallback | None) -> None:
    def write_once() -> Any:
        try:
            with conn.begin_nested() if dry_run else conn.begin():
                return write_batch(conn, target, batch, cursor)
        except sa.exc.IntegrityError as exc:
            # another writer inserted the same customer or email between our read and
            # write: the batch is re-resolved against what it committed
            raise RetryableFault(f"raced another writer ({type(exc.orig).__name__})",
                                 retry_after=0.0) from None

    counts = call_with_retries(write_once, BATCH_RACE_POLICY, what="batch", log=log)
    summary.counts.add(counts)
    summary.batches += 1
    room = MAX_REPORTED_PROBLEMS - len(summary.problems)
    summary.problems.extend(batch.problems[:max(room, 0)])
    if progress is not None:
        progress(summary)


def _checked_cursor(cursor: Mapping[str, Any]) -> Mapping[str, Any]:
    try:
        json.dumps(cursor)
    except (TypeError, ValueError) as exc:
        raise ConnectorError(f"checkpoint cursor is not JSON-serialisable: {exc}") from None
    return cursor
