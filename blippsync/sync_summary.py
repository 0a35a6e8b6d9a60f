"""What one sync pass did: counts, problems, outcome (also the `sync_finished` hook's
argument)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from blippsync.batch_writer import BatchCounts


@dataclass
class SyncSummary:
    """What one pass of one connection did (also the `sync_finished` hook's argument)."""

    business_id: uuid.UUID
    connector: str
    connection_id: uuid.UUID | None
    run_id: uuid.UUID | None = None
    dry_run: bool = False
    counts: BatchCounts = field(default_factory=BatchCounts)
    problems: list[dict[str, Any]] = field(default_factory=list)
    records: int = 0
    batches: int = 0
    seconds: float = 0.0
    throttle_wait_seconds: float = 0.0  # slept for the remote's rate limits
    error: str | None = None
    skipped: str | None = None  # why the pass did not run (another process holds it)
    locked_out: bool = False  # failed because another process held the connection's lock
    interrupted: bool = False

    def add_throttle_wait(self, seconds: float) -> None:
        self.throttle_wait_seconds += max(0.0, float(seconds))

    @property
    def ok(self) -> bool:
        return self.error is None

    def as_dict(self) -> dict[str, Any]:
        c = self.counts
        return {"business_id": str(self.business_id), "connector": self.connector,
                "connection_id": str(self.connection_id) if self.connection_id else None,
                "run_id": str(self.run_id) if self.run_id else None, "dry_run": self.dry_run,
                "created": c.created, "updated": c.updated, "unchanged": c.unchanged,
                "rejected": c.rejected, "conflicts": c.conflicts, "merged": c.merged,
                "joined": c.joined,
                "events_emitted": c.emitted, "events_historical": c.historical,
                "events_duplicate": c.duplicate, "subscription_status_changed": c.billing,
                "seconds": round(self.seconds, 3),
                "throttle_wait_seconds": round(self.throttle_wait_seconds, 3),
                "error": self.error, "skipped": self.skipped, "problems": self.problems}


ProgressCallback = Callable[[SyncSummary], None]
