"""The plugin host: entry points, broken plugins, operator switches, `connectors` listing."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from blippsync.plugins import load_plugins

BROKEN = {
    "broken_import": "import not_a_module_anywhere\n",
    "bad_registration": (
        "from blippsync.hookspecs import hookimpl\n"
        "class Half:\n    name = 'half'\n"
        "@hookimpl\ndef register_connectors(register):\n    register(Half())\n"),
    "duplicate_name": (
        "from blippsync.hookspecs import hookimpl\n"
        "class Impostor:\n    name = 'manual'\n    version = '6.6.6'\n    events = ()\n"
        "    needs_oauth = False\n    def sync(self, ctx):\n        return iter(())\n"
        "@hookimpl\ndef register_connectors(register):\n    register(Impostor())\n"),
    "misspelled_hook": (
        "from blippsync.hookspecs import hookimpl\n"
        "@hookimpl\ndef register_connecters(register):\n    pass\n"),
}


@pytest.fixture
def broken_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, source in BROKEN.items():
        (tmp_path / f"{name}.py").write_text(source)
        dist = tmp_path / f"{name}-0.1.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        (dist / "entry_points.txt").write_text(f"[blippsync]\n{name} = {name}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield tmp_path
    for name in BROKEN:
        sys.modules.pop(name, None)


def test_builtin_connectors_load_through_entry_points() -> None:
    plugins = load_plugins(environ={})
    assert {"csv", "manual"} <= set(plugins.connectors)
    assert plugins.connectors["csv"].package == "blippsync"
    assert plugins.problems == []


def test_broken_plugins_are_reported_and_others_still_load(broken_plugins: Path) -> None:
    plugins = load_plugins(environ={})
    problems = "\n".join(plugins.problems)
    assert "'broken_import'" in problems and "No module named 'not_a_module_anywhere'" in problems
    assert ("'bad_registration'" in problems
            and "lacks version, events, needs_oauth, sync" in problems)
    assert "'duplicate_name'" in problems and "'manual' is already registered" in problems
    assert "'misspelled_hook'" in problems and "register_connecters" in problems
    assert plugins.connectors["manual"].connector.version != "6.6.6"  # the first one is kept
    assert {"csv", "manual"} <= set(plugins.connectors)


def test_load_and_block_switches(tiny_plugin: Path) -> None:
    assert set(load_plugins(environ={"BLIPPSYNC_LOAD_PLUGINS": "tiny"}).connectors) == {"tiny"}
    blocked = load_plugins(environ={"BLIPPSYNC_BLOCK_PLUGINS": "tiny,csv"}).connectors
    assert "tiny" not in blocked and "csv" not in blocked and "manual" in blocked
    assert load_plugins(environ={"BLIPPSYNC_LOAD_PLUGINS": ""}).connectors == {}


def test_trace_switch_logs_hook_calls(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="blippsync.plugins"):
        load_plugins(environ={"BLIPPSYNC_TRACE_PLUGINS": "1"})
    assert any("register_connectors" in r.getMessage() for r in caplog.records)


def test_connectors_command_lists_version_package_events_oauth(tiny_plugin: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tiny_plugin), *sys.path])}
    out = subprocess.run([sys.executable, "-m", "blippsync", "connectors", "--json"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    listing = {c["name"]: c for c in json.loads(out.stdout)["connectors"]}
    assert listing["tiny"]["package"] == "tiny-connector"
    assert listing["tiny"]["package_version"] == "1.0"
    assert listing["tiny"]["events"] == ["job_completed"]
    assert listing["csv"]["needs_oauth"] is False
    assert listing["manual"]["version"] == "1.0.0"


def test_connectors_command_exits_1_when_a_plugin_is_broken(broken_plugins: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(broken_plugins), *sys.path])}
    out = subprocess.run([sys.executable, "-m", "blippsync", "connectors"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1
    assert "broken_import" in out.stderr and "Traceback" not in out.stderr
    assert "manual" in out.stdout


def test_plugins_add_commands(tiny_plugin: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tiny_plugin), *sys.path])}
    out = subprocess.run([sys.executable, "-m", "blippsync", "tiny-hello", "--name", "Ada"],
                         env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout == "hello Ada from tiny\n", out.stderr
    listing = subprocess.run([sys.executable, "-m", "blippsync", "--help"], env=env,
                             capture_output=True, text=True, timeout=60)
    assert "tiny-hello" in listing.stdout
