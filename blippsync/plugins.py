"""The plugin host: the only code that calls pluggy.

Built-in connectors and third-party packages load the same way, through the
`blippsync` entry-point group. A broken plugin (import error, bad registration,
duplicate name) is recorded in `Plugins.problems` and the others still load.

Operators steer loading with environment variables (as datasette does):
  BLIPPSYNC_LOAD_PLUGINS=csv,manual   load only these entry points ("" loads none)
  BLIPPSYNC_BLOCK_PLUGINS=jobber      never load these
  BLIPPSYNC_TRACE_PLUGINS=1           log every hook call
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from blippsync import hookspecs
from blippsync.connector import Connector, OAuthConnector, WebhookConnector

log = logging.getLogger(__name__)
GROUP = "blippsync"
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")


@dataclass(frozen=True)
class ConnectorInfo:
    connector: Any
    plugin: str  # the entry point (or plugin) that registered it
    package: str
    package_version: str

    @property
    def name(self) -> str:
        return str(self.connector.name)

    def describe(self) -> dict[str, Any]:
        c = self.connector
        return {"name": c.name, "version": c.version, "package": self.package,
                "package_version": self.package_version, "plugin": self.plugin,
                "events": list(c.events), "needs_oauth": bool(c.needs_oauth),
                "webhooks": isinstance(c, WebhookConnector)}


@dataclass
class Plugins:
    """What loaded: connectors and channels by name, and every problem met on the way."""

    manager: pluggy.PluginManager
    connectors: dict[str, ConnectorInfo] = field(default_factory=dict)
    channels: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    trace: bool = False
    _packages: dict[str, tuple[str, str]] = field(default_factory=dict)

    def connector(self, name: str) -> Any:
        from blippsync.errors import PluginError

        info = self.connectors.get(name)
        if info is None:
            known = ", ".join(sorted(self.connectors)) or "none"
            raise PluginError(f"no connector named {name!r} (loaded: {known})")
        return info.connector

    def events_by_connector(self) -> dict[str, tuple[str, ...]]:
        """connector name -> the trigger events it declares (what sequences may start on)."""
        return {name: tuple(info.connector.events) for name, info in self.connectors.items()}

    def add_commands(self, cli: Any) -> None:
        for impl in self.manager.hook.register_commands.get_hookimpls():
            self._call(impl, "register_commands", cli=cli)

    def notify_sync_finished(self, summary: Any) -> None:
        for impl in self.manager.hook.sync_finished.get_hookimpls():
            self._call(impl, "sync_finished", summary=summary)

    def collect_delivery_reports(self, config: Any, report: Callable[..., bool]) -> None:
        for impl in self.manager.hook.collect_delivery_reports.get_hookimpls():
            self._call(impl, "collect_delivery_reports", config=config, report=report)

    def _call(self, impl: Any, hook: str, **kwargs: Any) -> None:
        """Call one plugin's implementation (each on its own, so one failure stays its own)."""
        if self.trace:
            log.info("plugin trace: %s.%s(%s)", impl.plugin_name, hook, ", ".join(kwargs))
        try:
            impl.function(**kwargs)
        except Exception as exc:
            self.problems.append(f"plugin {impl.plugin_name!r}: {hook} failed: "
                                 f"{type(exc).__name__}: {exc}")
            log.warning("plugin %s: %s failed: %s", impl.plugin_name, hook, exc)


def load_plugins(extra: Iterable[tuple[str, object]] = (),
                 environ: dict[str, str] | None = None) -> Plugins:
    """Load every entry point of the group (and `extra` (name, module) pairs, for tests)."""
    env = os.environ if environ is None else environ
    manager = pluggy.PluginManager(GROUP)
    manager.add_hookspecs(hookspecs)
    plugins = Plugins(manager=manager, trace=bool(env.get("BLIPPSYNC_TRACE_PLUGINS")))
    only = _names(env.get("BLIPPSYNC_LOAD_PLUGINS")) if "BLIPPSYNC_LOAD_PLUGINS" in env else None
    blocked = _names(env.get("BLIPPSYNC_BLOCK_PLUGINS"))

    for ep in importlib.metadata.entry_points(group=GROUP):
        if (only is not None and ep.name not in only) or ep.name in blocked:
            continue
        if manager.has_plugin(ep.name):
            continue  # the same distribution seen twice on sys.path
        try:
            module = ep.load()
            manager.register(module, name=ep.name)
        except Exception as exc:
            plugins.problems.append(f"plugin {ep.name!r} ({ep.value}) failed to load: "
                                    f"{type(exc).__name__}: {exc}")
            continue
        dist = ep.dist
        plugins._packages[ep.name] = (dist.name, dist.version) if dist else ("?", "?")
    for name, module in extra:
        manager.register(module, name=name)
        plugins._packages[name] = (getattr(module, "__name__", name), "local")
    try:
        manager.check_pending()
    except pluggy.PluginValidationError as exc:
        plugins.problems.append(f"plugin {exc.plugin!r}: {exc}")

    _collect(plugins, "register_connectors", _check_connector, plugins.connectors, _connector_info)
    _collect(plugins, "register_channels", _check_channel, plugins.channels,
             lambda obj, _p, _pl: obj)
    for problem in plugins.problems:
        log.warning("%s", problem)
    return plugins


def _collect(plugins: Plugins, hook: str, check: Callable[[Any], str | None],
             into: dict[str, Any], wrap: Callable[[Any, str, Plugins], Any]) -> None:
    for impl in reversed(getattr(plugins.manager.hook, hook).get_hookimpls()):  # load order
        plugin_name = impl.plugin_name

        def register(obj: Any, _plugin: str = plugin_name) -> None:
            problem = check(obj)
            if problem:
                plugins.problems.append(f"plugin {_plugin!r}: {problem}")
                return
            if obj.name in into:
                plugins.problems.append(f"plugin {_plugin!r}: {hook[9:-1]} {obj.name!r} is already "
                                        "registered by another plugin; keeping the first")
                return
            into[obj.name] = wrap(obj, _plugin, plugins)

        plugins._call(impl, hook, register=register)


def _connector_info(obj: Any, plugin: str, plugins: Plugins) -> ConnectorInfo:
    package, version = plugins._packages.get(plugin, ("?", "?"))
    return ConnectorInfo(connector=obj, plugin=plugin, package=package, package_version=version)


def _check_connector(obj: Any) -> str | None:
    if not isinstance(obj, Connector):
        missing = [a for a in ("name", "version", "events", "needs_oauth", "sync")
                   if not hasattr(obj, a)]
        return f"registered connector {obj!r} lacks {', '.join(missing)}"
    if not isinstance(obj.name, str) or not obj.name or set(obj.name) - _NAME_CHARS \
            or not obj.name[0].isalpha():
        return f"connector name {obj.name!r} must be lower-case letters, digits and _"
    if isinstance(obj.events, str) or not all(isinstance(e, str) for e in obj.events):
        return f"connector {obj.name!r}: events must be a list of event type names"
    if obj.needs_oauth and not isinstance(obj, OAuthConnector):
        return f"connector {obj.name!r} needs OAuth but has no oauth_spec/token_expiry"
    return None


def _check_channel(obj: Any) -> str | None:
    if not isinstance(getattr(obj, "name", None), str) or not callable(getattr(obj, "send", None)):
        return f"registered channel {obj!r} needs a name and a send() method"
    return None


def _names(value: str | None) -> set[str]:
    return {part.strip() for part in (value or "").split(",") if part.strip()}
