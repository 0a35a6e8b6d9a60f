"""One polling pass: clients, then completed jobs, then paid invoices.

The cursor keeps one watermark per stream plus, while a pass is under way, where it is
(stream and page cursor), so a crash resumes on the page after the last checkpoint:

    {"watermarks": {"clients": iso|null, "jobs": iso|null, "invoices": iso|null},
     "pass": {"started_at": iso, "stream": "jobs", "after": "MQ"}}   # "pass" only mid-way

A finished pass moves every watermark to its start time; the next pass re-reads
`overlap_seconds` before each watermark (writes are idempotent, events deduplicated).
Clients are read with no upper bound, so every client whose job or invoice the pass
reports has been read before it (a job cannot complete before its client exists).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from blippsync.records import Checkpoint, Record
from connectors.jobber import mapping, queries
from connectors.jobber.cost import query_cost
from connectors.jobber.graphql import GraphQLClient
from connectors.jobber.settings import JobberSettings


@dataclass(frozen=True)
class Stream:
    name: str
    query: str
    root: str
    make_filter: Callable[[str | None, str], dict[str, Any] | None]
    to_records: Callable[[Mapping[str, Any], str], list[Any]]


def _clients_filter(since: str | None, until: str) -> dict[str, Any] | None:
    return {"updatedAt": {"after": since}} if since else None


def _jobs_filter(since: str | None, until: str) -> dict[str, Any]:
    return {"completedAt": {"after": since, "before": until}}


def _invoices_filter(since: str | None, until: str) -> dict[str, Any]:
    return {"status": "paid", "updatedAt": {"after": since, "before": until}}


def _one(record: Any) -> list[Any]:
    return [] if record is None else [record]


STREAMS = (
    Stream("clients", queries.CLIENTS, "clients", _clients_filter,
           lambda node, account: [mapping.customer(node)]),
    Stream("jobs", queries.COMPLETED_JOBS, "jobs", _jobs_filter,
           lambda node, account: _one(mapping.job_completed(node, account))),
    Stream("invoices", queries.PAID_INVOICES, "invoices", _invoices_filter,
           lambda node, account: _one(mapping.invoice_paid(node, account))),
)
_NAMES = [s.name for s in STREAMS]


def page_size(stream: Stream, settings: JobberSettings, bucket_points: float) -> int:
    """Items per page so one query asks for at most `max_query_cost_fraction` of the bucket."""
    fixed = query_cost(stream.query, {"first": 0})
    per_item = max(1, query_cost(stream.query, {"first": 1}) - fixed)
    fits = int((settings.max_query_cost_fraction * bucket_points - fixed) // per_item)
    return max(1, min(settings.page_size, fits))


def run_pass(gql: GraphQLClient, settings: JobberSettings, account: str,
             cursor: Mapping[str, Any] | None, now: datetime) -> Iterator[Record]:
    cursor = dict(cursor or {})
    marks: dict[str, str | None] = {n: None for n in _NAMES}
    marks.update({k: v for k, v in (cursor.get("watermarks") or {}).items() if k in marks})
    current = cursor.get("pass") or {"started_at": _iso(now), "stream": _NAMES[0], "after": None}
    if current.get("stream") not in _NAMES:
        current = {"started_at": _iso(now), "stream": _NAMES[0], "after": None}
    until = current["started_at"]
    first_stream = _NAMES.index(current["stream"])
    for index, stream in enumerate(STREAMS[first_stream:], start=first_stream):
        after = current.get("after") if index == first_stream else None
        since = _since(stream.name, marks[stream.name], until, settings)
        size = page_size(stream, settings, gql.throttle.maximum)
        while True:
            data = gql.execute(stream.query, {"first": size, "after": after,
                                              "filter": stream.make_filter(since, until)},
                               shape=f"{stream.name}:{size}")
            connection = data.get(stream.root) or {}
            for node in connection.get("nodes") or []:
                yield from stream.to_records(node, account)
            info = connection.get("pageInfo") or {}
            after = info.get("endCursor")
            if not info.get("hasNextPage") or not after:
                break
            yield Checkpoint({"watermarks": marks, "pass": {"started_at": until,
                                                            "stream": stream.name, "after": after}})
        if index + 1 < len(STREAMS):
            yield Checkpoint({"watermarks": marks, "pass": {
                "started_at": until, "stream": STREAMS[index + 1].name, "after": None}})
    yield Checkpoint({"watermarks": {n: until for n in _NAMES}})


def _since(stream: str, mark: str | None, until: str, settings: JobberSettings) -> str | None:
    if mark is None:
        if stream == "clients":
            return None  # first pass: every client
        start = datetime.fromisoformat(until) - timedelta(days=settings.initial_lookback_days)
        return _iso(start)
    return _iso(datetime.fromisoformat(mark) - timedelta(seconds=settings.overlap_seconds))


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")
