"""The plugin host: the only code that calls pluggy.

Built-in connectors and third-party packages load the same way, through the
`blippsync` entry-point group. A broken plugin (import error, bad registration,
duplicate name, misspelled hook) is recorded in `Plugins.problems` and the others
still load.

Hooks are called through pluggy's hook callers, one plugin at a time in precedence
order (built-ins first, then by distribution and entry-point name, never `sys.path`
order), so pluggy passes each implementation only the arguments it names and one
plugin's failure stays its own. `Plugins` is the typed facade the rest of the code uses.

Operators steer loading with environment variables (as datasette does):
  BLIPPSYNC_LOAD_PLUGINS=csv,manual   load only these entry points ("" loads none)
  BLIPPSYNC_BLOCK_PLUGINS=jobber      never load these
  BLIPPSYNC_TRACE_PLUGINS=1           log every hook call
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from blippsync import hookspecs
from blippsync.channels import Channel
from blippsync.connector import Connector, OAuthConnector, WebhookConnector, declared_credentials

if TYPE_CHECKING:
    import click

    from blippsync.config import Config
    from blippsync.sync_summary import SyncSummary

log = logging.getLogger(__name__)
GROUP = "blippsync"
BUILTIN_DISTRIBUTION = "blippsync"
_NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789_")
T = TypeVar("T")


@dataclass(frozen=True)
class ConnectorInfo:
    connector: Connector
    plugin: str  # the entry point (or plugin) that registered it
    package: str
    package_version: str

    @property
    def name(self) -> str:
        return self.connector.name

    def describe(self) -> dict[str, Any]:
        c = self.connector
        return {"name": c.name, "version": c.version, "package": self.package,
                "package_version": self.package_version, "plugin": self.plugin,
                "events": list(c.events), "needs_oauth": bool(c.needs_oauth),
                "credentials": list(declared_credentials(c)),
                "webhooks": isinstance(c, WebhookConnector)}


@dataclass
class Plugins:
    """What loaded: connectors and channels by name, and every problem met on the way."""

    manager: pluggy.PluginManager
    connectors: dict[str, ConnectorInfo] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    trace: bool = False
    order: list[str] = field(default_factory=list)  # plugin names, in precedence order
    _packages: dict[str, tuple[str, str]] = field(default_factory=dict)

    def connector(self, name: str) -> Connector:
        from blippsync.errors import PluginError

        info = self.connectors.get(name)
        if info is None:
            known = ", ".join(sorted(self.connectors)) or "none"
            raise PluginError(f"no connector named {name!r} (loaded: {known})")
        return info.connector

    def events_by_connector(self) -> dict[str, tuple[str, ...]]:
        """connector name -> the trigger events it declares (what sequences may start on)."""
        return {name: tuple(info.connector.events) for name, info in self.connectors.items()}

    # --- the typed facade over the hooks (see blippsync.hookspecs) ----------------------

    def add_commands(self, cli: click.Group, connect: click.Group,
                     disconnect: click.Group) -> None:
        self._call_each("register_commands", cli=cli, connect=connect, disconnect=disconnect)

    def collect_delivery_reports(self, config: Config, report: Callable[..., bool]) -> None:
        self._call_each("collect_delivery_reports", config=config, report=report)

    def notify_sync_finished(self, summary: SyncSummary) -> None:
        self._call_each("sync_finished", summary=summary)

    def _register_connectors(self) -> None:
        self._collect("register_connectors", "connector", _check_connector, self.connectors,
                      self._connector_info)

    def _register_channels(self) -> None:
        self._collect("register_channels", "channel", _check_channel, self.channels,
                      lambda channel, _plugin: channel)

    # --- calling one plugin at a time -------------------------------------------------

    def _call_each(self, hook: str, **kwargs: object) -> None:
        for plugin_name in self._implementers(hook):
            self._call_one(hook, plugin_name, kwargs)

    def _implementers(self, hook: str) -> list[str]:
        implementing = {impl.plugin_name for impl in getattr(self.manager.hook, hook)
                        .get_hookimpls()}
        return [name for name in self.order if name in implementing]

    def _call_one(self, hook: str, plugin_name: str, kwargs: Mapping[str, object]) -> None:
        """Call `hook` of one plugin through pluggy (which passes each implementation
        only the arguments it names); its exception is reported, not raised."""
        others = [p for name, p in self.manager.list_name_plugin()
                  if name != plugin_name and p is not None]
        caller = self.manager.subset_hook_caller(hook, remove_plugins=others)
        if self.trace:
            log.info("plugin trace: %s.%s(%s)", plugin_name, hook, ", ".join(kwargs))
        try:
            caller(**kwargs)
        except Exception as exc:
            self.problems.append(f"plugin {plugin_name!r}: {hook} failed: "
                                 f"{type(exc).__name__}: {exc}")
            log.warning("plugin %s: %s failed: %s", plugin_name, hook, exc)

    def _collect(self, hook: str, kind: str, check: Callable[[Any], str | None],
                 into: dict[str, T], wrap: Callable[[Any, str], T]) -> None:
        for plugin_name in self._implementers(hook):

            def register(obj: Any, _plugin: str = plugin_name) -> None:
                problem = check(obj)
                if problem:
                    self.problems.append(f"plugin {_plugin!r}: {problem}")
                    return
                if obj.name in into:
                    self.problems.append(f"plugin {_plugin!r}: {kind} {obj.name!r} is already "
                                         "registered by a plugin of higher precedence; "
                                         "keeping that one")
                    return
                into[obj.name] = wrap(obj, _plugin)

            self._call_one(hook, plugin_name, {"register": register})

    def _connector_info(self, obj: Connector, plugin: str) -> ConnectorInfo:
        package, version = self._packages.get(plugin, ("?", "?"))
        return ConnectorInfo(connector=obj, plugin=plugin, package=package,
                             package_version=version)


def load_plugins(extra: Iterable[tuple[str, object]] = (),
                 environ: Mapping[str, str] | None = None) -> Plugins:
    """Load every entry point of the group (and `extra` (name, module) pairs, for tests,
    which come after the installed plugins in precedence)."""
    env = os.environ if environ is None else environ
    manager = pluggy.PluginManager(GROUP)
    manager.add_hookspecs(hookspecs)
    plugins = Plugins(manager=manager, trace=bool(env.get("BLIPPSYNC_TRACE_PLUGINS")))
    only = _names(env.get("BLIPPSYNC_LOAD_PLUGINS")) if "BLIPPSYNC_LOAD_PLUGINS" in env else None
    blocked = _names(env.get("BLIPPSYNC_BLOCK_PLUGINS"))

    for ep in sorted(importlib.metadata.entry_points(group=GROUP), key=_precedence):
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
        plugins.order.append(ep.name)
    for name, module in extra:
        manager.register(module, name=name)
        plugins._packages[name] = (getattr(module, "__name__", name), "local")
        plugins.order.append(name)
    _check_hook_names(plugins)
    plugins._register_connectors()
    plugins._register_channels()
    for problem in plugins.problems:
        log.warning("%s", problem)
    return plugins


def _precedence(ep: importlib.metadata.EntryPoint) -> tuple[bool, str, str]:
    """Built-ins first, then by distribution name, then entry-point name."""
    dist = (ep.dist.name if ep.dist else "").lower()
    return (dist != BUILTIN_DISTRIBUTION, dist, ep.name)


def _check_hook_names(plugins: Plugins) -> None:
    """A hook implementation whose name is no hook (a misspelling) is reported, and its
    plugin stays out, as pluggy's check_pending would have it."""
    for hook in plugins.manager.hook.__dict__.values():
        if not isinstance(hook, pluggy.HookCaller) or hook.has_spec():
            continue
        for impl in hook.get_hookimpls():
            if impl.optionalhook:
                continue
            plugins.problems.append(f"plugin {impl.plugin_name!r}: unknown hook {hook.name!r} "
                                    "(misspelled? the hooks are in blippsync.hookspecs); "
                                    "the plugin is not loaded")
            plugin = plugins.manager.get_plugin(impl.plugin_name)
            if plugin is not None:
                plugins.manager.unregister(plugin)
            if impl.plugin_name in plugins.order:
                plugins.order.remove(impl.plugin_name)
    plugins.manager.check_pending()  # nothing left to reject: raises only on a bug here


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
    credentials = getattr(obj, "credentials", ())
    if isinstance(credentials, str) or not all(isinstance(c, str) for c in credentials):
        return f"connector {obj.name!r}: credentials must be a list of secret names"
    if credentials and obj.needs_oauth:  # both would live in connections.credentials
        return f"connector {obj.name!r}: declare credentials or needs_oauth, not both"
    return None


def _check_channel(obj: Any) -> str | None:
    if not isinstance(obj, Channel):
        return f"registered channel {obj!r} needs a name, kinds and a send() method"
    return None


def _names(value: str | None) -> set[str]:
    return {part.strip() for part in (value or "").split(",") if part.strip()}
