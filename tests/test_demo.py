"""The quickstart's main job: `blippsync demo` carries the examples all the way."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from blippsync.demo import recent_copy


def test_recent_copy_moves_jobs_to_yesterday_and_keeps_their_spacing() -> None:
    text = "Name,Completed At\nA,2026-01-10T13:00:00Z\nB,2026-01-08T09:30:00Z\nC,\n"
    moved = recent_copy(text, datetime(2026, 11, 25, 8, 0, tzinfo=UTC))
    assert moved.splitlines() == ["Name,Completed At", "A,2026-11-24T13:00:00+00:00",
                                  "B,2026-11-22T09:30:00+00:00", "C,"]


def test_demo_imports_enrolls_and_renders_messages(cli_env, tmp_path: Path) -> None:
    env = {**cli_env, "BLIPPSYNC_CSV_INBOX_DIR": str(tmp_path / "inbox"),
           "BLIPPSYNC_CHANNELS_OUTBOX_DIR": str(tmp_path / "outbox")}
    out = subprocess.run([sys.executable, "-m", "blippsync", "demo", "--json"], env=env,
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    sync = result["syncs"][0]
    assert (sync["connector"], sync["created"], sync["events_emitted"]) == ("csv", 8, 8)
    assert result["journeys"]["routing"]["enrolled"] == 8
    emails = sorted(Path(result["outbox_dir"]).glob("*.eml"))
    assert len(emails) == 7  # one example customer has no email address
    body = emails[0].read_text()
    assert "Sparkle Plumbing Co" in body and "{{" not in body
    again = json.loads(subprocess.run([sys.executable, "-m", "blippsync", "demo", "--json"],
                                      env=env, capture_output=True, text=True,
                                      timeout=180).stdout)
    assert again["syncs"][0]["events_duplicate"] == 8  # the same day: nothing new happens
    human = subprocess.run([sys.executable, "-m", "blippsync", "demo"], env=env,
                           capture_output=True, text=True, timeout=180)
    assert "Messages rendered into the outbox: 7" in human.stdout
    assert "blippsync explain --customer" in human.stdout
