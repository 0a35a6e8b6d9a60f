"""The connector contract suite, run against the built-in connectors and a third-party one
installed through an entry point."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from blippsync.testing.contract import ConnectorContract, make_context

WHEN = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)


class TestManualConnector(ConnectorContract):
    connector_name = "manual"
    final_cursor_replays_input = True  # the command's own customer, every time

    def make_context(self, tmp_path: Path, cursor: Any = None) -> Any:
        return make_context(cursor=cursor, settings={"country": "US"}, options={
            "customer": {"name": "Dana Hand", "email": "dana@hand.test"},
            "event": "job_completed", "occurred_at": WHEN})

    def make_failing_context(self, tmp_path: Path) -> Any:
        return make_context(options={"customer": {"name": " ", "email": None}})


class TestThirdPartyConnector(ConnectorContract):
    connector_name = "tiny"

    @pytest.fixture(autouse=True)
    def _installed(self, tiny_plugin: Path) -> None:
        """The tiny connector is a separate distribution found through its entry point."""

    def make_context(self, tmp_path: Path, cursor: Any = None) -> Any:
        return make_context(cursor=cursor, now=WHEN)

    def make_failing_context(self, tmp_path: Path) -> Any:
        return make_context(options={"fail": True})


class TestCsvConnector(ConnectorContract):
    connector_name = "csv"
    final_cursor_replays_input = True  # importing a file again reads it again

    @pytest.fixture(autouse=True)
    def _checkpoint_every_row(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """So the round trip resumes from the middle of the file too."""
        monkeypatch.setattr("connectors.csv.CHECKPOINT_ROWS", 1)

    def make_context(self, tmp_path: Path, cursor: Any = None) -> Any:
        path = tmp_path / "jobs.csv"
        if not path.exists():
            path.write_text("Customer ID,Name,Email,Phone,Completed At\n"
                            "C1,Ann Lee,ann@lee.test,(212) 555-0101,2026-11-20\n"
                            "C2,Bo Chan,,212-555-0102,2026-11-21\n")
        return make_context(cursor=cursor, settings={"timezone": "America/New_York"},
                            options={"path": path})

    def make_failing_context(self, tmp_path: Path) -> Any:
        path = tmp_path / "not-a-table.csv"
        path.write_bytes(b"PK\x03\x04 a zip file, not text\x00\x00")
        return make_context(options={"path": path})
