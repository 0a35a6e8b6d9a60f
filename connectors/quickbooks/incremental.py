"""Reading what changed since the cursor: paged queries, or Change Data Capture.

The cursor holds, per entity, the greatest MetaData.LastUpdatedTime seen (Intuit's own
string, offset preserved) and the ids seen at exactly that instant. Each pass asks for
`>=` that instant and drops those ids, so a record updated in the same second as the
boundary is never missed and an unchanged one is never re-read.

    {"v": 1, "Customer": {"since": "2024-06-20T13:16:17-07:00", "ids": ["12"]}, "Invoice": ...}
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from connectors.quickbooks.client import QboClient
from connectors.quickbooks.mapping import last_updated, parse_time

ENTITIES = ("Customer", "Invoice")
CDC_MAX_OBJECTS = 1000  # Intuit's cap per CDC response, shared by all entities asked for
CDC_MAX_AGE = timedelta(days=29)  # CDC reaches back 30 days; keep a day of margin


@dataclass
class Watermark:
    """Greatest LastUpdatedTime seen for one entity, and the ids seen at that instant."""

    since: str | None = None
    ids: set[str] = field(default_factory=set)

    @property
    def instant(self) -> datetime | None:
        return parse_time(self.since)

    def is_new(self, obj: Mapping[str, Any]) -> bool:
        when = parse_time(last_updated(obj))
        bound = self.instant
        if bound is None or when is None:
            return True
        return when > bound or (when == bound and str(obj.get("Id")) not in self.ids)

    def advance(self, obj: Mapping[str, Any]) -> None:
        text = last_updated(obj)
        when, bound = parse_time(text), self.instant
        if when is None:
            return
        if bound is None or when > bound:
            self.since, self.ids = text, {str(obj.get("Id"))}
        elif when == bound:
            self.ids.add(str(obj.get("Id")))

    def to_json(self) -> dict[str, Any] | None:
        return {"since": self.since, "ids": sorted(self.ids)} if self.since else None


def load_cursor(cursor: Mapping[str, Any] | None) -> dict[str, Watermark]:
    marks = {e: Watermark() for e in ENTITIES}
    for entity in ENTITIES:
        state = (cursor or {}).get(entity)
        if isinstance(state, Mapping) and parse_time(state.get("since")) is not None:
            marks[entity] = Watermark(str(state["since"]), {str(i) for i in state.get("ids", ())})
    return marks


def dump_cursor(marks: Mapping[str, Watermark]) -> dict[str, Any]:
    return {"v": 1, **{e: m.to_json() for e, m in marks.items() if m.to_json()}}


def query_statement(entity: str, mark: Watermark, start: int, size: int) -> str:
    where = []
    bound = mark.instant
    if bound is not None:  # re-formatted from the parsed value: nothing else reaches the query
        where.append(f"MetaData.LastUpdatedTime >= '{bound.isoformat()}'")
    if entity == "Customer":
        where.append("Active IN (true, false)")  # inactive customers are hidden otherwise
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return (f"SELECT * FROM {entity}{clause} ORDERBY MetaData.LastUpdatedTime "
            f"STARTPOSITION {start} MAXRESULTS {size}")


def query_pages(client: QboClient, entity: str, mark: Watermark,
                page_size: int) -> Iterator[list[dict[str, Any]]]:
    """Pages of new objects, oldest first, until a short or empty page. `mark` is advanced
    as each page is handed out (so a checkpoint after a page covers exactly it)."""
    start, frozen = 1, Watermark(mark.since, set(mark.ids))  # the pass's lower bound
    while True:
        body = client.query(query_statement(entity, frozen, start, page_size))
        rows = (body.get("QueryResponse") or {}).get(entity) or []
        fresh = [r for r in rows if frozen.is_new(r)]
        for row in fresh:
            mark.advance(row)
        yield fresh
        if len(rows) < page_size:
            return
        start += len(rows)


def cdc_within_reach(marks: Mapping[str, Watermark], now: datetime) -> bool:
    instants = [m.instant for m in marks.values()]
    return all(i is not None and now - i < CDC_MAX_AGE for i in instants)


def cdc_changes(client: QboClient, entities: tuple[str, ...], since: datetime
                ) -> dict[str, list[dict[str, Any]]] | None:
    """Objects changed since `since`, per entity, oldest first; None when the response hit
    the 1,000-object cap (it may be truncated: the caller asks for less)."""
    body = client.get("cdc", {"entities": ",".join(entities), "changedSince": since.isoformat()})
    found: dict[str, list[dict[str, Any]]] = {e: [] for e in entities}
    for block in body.get("CDCResponse") or []:
        for response in block.get("QueryResponse") or []:
            for entity in entities:
                found[entity].extend(response.get(entity) or [])
    if sum(len(v) for v in found.values()) >= CDC_MAX_OBJECTS:
        return None
    for rows in found.values():
        rows.sort(key=lambda r: parse_time(last_updated(r)) or since)
    return found
