"""The plugin host: entry points, broken plugins, operator switches, `connectors` listing."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import click
import pytest

from blippsync.hookspecs import hookimpl
from blippsync.plugins import load_plugins
from blippsync.sync_summary import SyncSummary

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


# --- hooks are called through pluggy: an implementation may name fewer arguments -------

class _OldPlugin:
    """Written against an older hookspec: register_commands took only `cli`, and it
    ignores the summary sync_finished passes."""

    def __init__(self) -> None:
        self.finished = 0

    @hookimpl
    def register_commands(self, cli: click.Group) -> None:
        @cli.command("old-hello")
        def old_hello() -> None:
            click.echo("hello from an old plugin")

    @hookimpl
    def sync_finished(self) -> None:
        self.finished += 1


def test_a_plugin_omitting_hook_arguments_still_loads_and_is_called() -> None:
    old = _OldPlugin()
    plugins = load_plugins(extra=[("old", old)], environ={})
    assert plugins.problems == []
    root = click.Group("root")
    connect, disconnect = click.Group("connect"), click.Group("disconnect")
    plugins.add_commands(root, connect, disconnect)
    assert "old-hello" in root.commands
    assert {"quickbooks", "jobber"} <= set(connect.commands)  # built-ins use the same hook
    assert {"quickbooks", "jobber"} <= set(disconnect.commands)
    plugins.notify_sync_finished(SyncSummary(uuid.uuid4(), "tiny", None))
    assert old.finished == 1


def test_a_failing_observer_is_reported_and_the_others_still_run() -> None:
    class Failing:
        @hookimpl
        def sync_finished(self, summary: SyncSummary) -> None:
            raise RuntimeError(f"boom on {summary.connector}")

    old = _OldPlugin()
    plugins = load_plugins(extra=[("failing", Failing()), ("old", old)], environ={})
    plugins.notify_sync_finished(SyncSummary(uuid.uuid4(), "tiny", None))
    assert old.finished == 1
    assert plugins.problems == ["plugin 'failing': sync_finished failed: "
                                "RuntimeError: boom on tiny"]


def test_the_core_cli_does_not_import_connectors() -> None:
    code = ("import sys, blippsync.cli, blippsync.cli.connect, blippsync.runner, "
            "blippsync.daemon; print(sorted(m for m in sys.modules if m.startswith('connectors')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# --- precedence of duplicate connector names: decided, not left to sys.path order -------

def _plugin_dist(root: Path, dist: str, module: str, version: str) -> Path:
    folder = root / dist
    folder.mkdir()
    (folder / f"{module}.py").write_text(
        "from blippsync.hookspecs import hookimpl\n"
        "class Dup:\n    name = 'dup'\n"
        f"    version = {version!r}\n    events = ()\n    needs_oauth = False\n"
        "    def sync(self, ctx):\n        return iter(())\n"
        "@hookimpl\ndef register_connectors(register):\n    register(Dup())\n")
    info = folder / f"{dist}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[blippsync]\n{module} = {module}\n")
    return folder


@pytest.mark.parametrize("path_order", ["alpha_first", "zulu_first"])
def test_duplicate_connector_names_resolve_by_distribution_name_not_sys_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path_order: str) -> None:
    alpha = _plugin_dist(tmp_path, "alpha_dup", "zz_alpha_dup", "1.0")
    zulu = _plugin_dist(tmp_path, "zulu_dup", "aa_zulu_dup", "2.0")
    for folder in ([zulu, alpha] if path_order == "alpha_first" else [alpha, zulu]):
        monkeypatch.syspath_prepend(str(folder))  # the last prepended comes first
    importlib.invalidate_caches()
    try:
        plugins = load_plugins(environ={})
    finally:
        for module in ("zz_alpha_dup", "aa_zulu_dup"):
            sys.modules.pop(module, None)
    winner = plugins.connectors["dup"]
    assert (winner.package, winner.connector.version) == ("alpha_dup", "1.0")
    assert plugins.problems == ["plugin 'aa_zulu_dup': connector 'dup' is already registered "
                                "by a plugin of higher precedence; keeping that one"]
    assert plugins.order.index("csv") < plugins.order.index("zz_alpha_dup")  # built-ins first
