"""Loading configuration: the TOML file, then BLIPPSYNC_* environment overrides.

Secrets can always come from the environment, and a value in the file may point
elsewhere instead of holding the secret itself (as datasette does):

    client_secret = { "$env" = "QBO_CLIENT_SECRET" }
    client_secret = { "$file" = "/run/secrets/qbo" }
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from blippsync.errors import ConfigError
from blippsync.settings import (
    FREE_FORM_SECTIONS,
    SETTINGS,
    SETTINGS_BY_KEY,
    Setting,
    retention_problems,
)

CONFIG_ENV_VAR = "BLIPPSYNC_CONFIG"
DEFAULT_CONFIG_NAME = "config.toml"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


# Plugin settings are free-form: a key naming one of these is treated as a secret.
_SECRET_WORDS = ("secret", "password", "token", "key", "credential", "auth")
MASK = "[secret]"


def _is_secret_key(key: str) -> bool:
    setting = SETTINGS_BY_KEY.get(key)
    if setting is not None:
        return setting.secret
    return any(word in key.lower() for word in _SECRET_WORDS)


def _masked(values: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = prefix + key
        if isinstance(value, Mapping):
            out[key] = _masked(value, name + ".")
        elif _is_secret_key(name) and value not in ("", None, [], {}):
            out[key] = MASK
        else:
            out[key] = value
    return out


class SettingValues(dict[str, Any]):
    """The settings by key; printing it never shows a secret (a Config may be logged,
    put in an exception, or end up in a repr of something that holds it)."""

    def __repr__(self) -> str:
        return repr(_masked(self))

    __str__ = __repr__


@dataclass(frozen=True, repr=False)
class Config:
    """Resolved settings. `path` is the file read (None: defaults and environment only).
    repr/str mask every secret setting and every secret-named plugin setting."""

    values: Mapping[str, Any]
    path: Path | None
    plugins: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "values", SettingValues(self.values))
        object.__setattr__(self, "plugins", _MaskedPlugins(
            {name: SettingValues(v) for name, v in self.plugins.items()}))

    def __repr__(self) -> str:
        return (f"Config(path={self.path!r}, values={self.values!r}, "
                f"plugins={self.plugins!r})")

    __str__ = __repr__

    def __getitem__(self, key: str) -> Any:
        return self.values[key]

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path else Path.cwd()

    def resolve_path(self, key: str) -> Path:
        """A path setting, relative to the config file's folder."""
        path = Path(self.values[key]).expanduser()
        return path if path.is_absolute() else (self.base_dir / path)

    def plugin_settings(self, name: str) -> Mapping[str, Any]:
        return self.plugins.get(name, {})

    def with_values(self, **overrides: Any) -> Config:
        """A copy with some keys replaced (keys use __ for the dot: database__url)."""
        values = dict(self.values)
        for name, value in overrides.items():
            values[name.replace("__", ".")] = value
        return Config(values=values, path=self.path, plugins=self.plugins)


class _MaskedPlugins(dict[str, SettingValues]):
    def __repr__(self) -> str:
        return repr({name: _masked(v, "plugins.") for name, v in self.items()})

    __str__ = __repr__


def load_config(path: str | Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read the file (explicit path, $BLIPPSYNC_CONFIG, or ./config.toml if present)."""
    env = os.environ if environ is None else environ
    file = _pick_file(path, env)
    raw: dict[str, Any] = {}
    if file is not None:
        try:
            with open(file, "rb") as fh:
                raw = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"{file}: no such configuration file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    where = str(file) if file else "defaults"
    values, plugins = _flatten(raw, where, file, env)
    for setting in SETTINGS:
        if setting.env_var in env:
            values[setting.key] = _parse_env(setting, env[setting.env_var])
        elif setting.key not in values:
            values[setting.key] = setting.default
    if problems := retention_problems(values):
        raise ConfigError(f"{where}: " + "; ".join(problems))
    return Config(values=values, path=file.resolve() if file else None, plugins=plugins)


def _pick_file(path: str | Path | None, env: Mapping[str, str]) -> Path | None:
    if path is not None:
        return Path(path)
    if env.get(CONFIG_ENV_VAR):
        return Path(env[CONFIG_ENV_VAR])
    default = Path(DEFAULT_CONFIG_NAME)
    return default if default.exists() else None


def _flatten(raw: Mapping[str, Any], where: str, file: Path | None, env: Mapping[str, str]
             ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    values: dict[str, Any] = {}
    plugins: dict[str, dict[str, Any]] = {}
    for section, body in raw.items():
        if section in FREE_FORM_SECTIONS:
            if not isinstance(body, dict):
                raise ConfigError(f"{where}: [{section}] must be a table of tables")
            plugins = {name: _plugin_table(name, v, where, file, env)
                       for name, v in body.items() if isinstance(v, dict)}
            continue
        if not isinstance(body, dict):
            raise ConfigError(f"{where}: unknown key '{section}' (settings live in sections "
                              "such as [database])")
        for name, value in body.items():
            key = f"{section}.{name}"
            setting = SETTINGS_BY_KEY.get(key)
            if setting is None:
                raise ConfigError(f"{where}: unknown key '{key}'")
            resolved = _indirect(value, key, where, file, env)
            if resolved is not value and setting.type is not str:
                # text from a variable or a file: parsed as an environment override would be
                resolved = _parse_env(setting, resolved, where)
            values[key] = _check_type(setting, resolved, where)
    return values, plugins


def _plugin_table(name: str, table: Mapping[str, Any], where: str, file: Path | None,
                  env: Mapping[str, str]) -> dict[str, Any]:
    """A [plugins.<name>] table, its $env/$file values read (and masked in logs: secrets)."""
    from blippsync.redaction import register_secret

    resolved: dict[str, Any] = {}
    for key, value in table.items():
        resolved[key] = _indirect(value, f"plugins.{name}.{key}", where, file, env)
        if resolved[key] is not value and isinstance(resolved[key], str):
            register_secret(resolved[key])
    return resolved


def _indirect(value: Any, key: str, where: str, file: Path | None,
              env: Mapping[str, str]) -> Any:
    """Follow {"$env" = NAME} and {"$file" = PATH} so secrets need not sit in the file."""
    if isinstance(value, dict) and len(value) == 1 and next(iter(value)) in ("$env", "$file"):
        kind, target = next(iter(value.items()))
        if kind == "$env":
            if target not in env:
                raise ConfigError(f"{where}: '{key}' reads ${target}, which is not set")
            return env[target]
        secret_path = Path(target).expanduser()
        if not secret_path.is_absolute() and file is not None:
            secret_path = file.parent / secret_path
        try:
            return secret_path.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"{where}: '{key}' reads file {secret_path}: "
                              f"{exc.strerror}") from None
    return value


def _check_type(setting: Setting, value: Any, where: str) -> Any:
    expected = setting.type
    ok = isinstance(value, expected) and not (expected is int and isinstance(value, bool))
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is list and isinstance(value, list):
        return [str(v) for v in value]
    if not ok:
        raise ConfigError(f"{where}: '{setting.key}' must be {_type_name(expected)}, "
                          f"got {_type_name(type(value))}")
    return value


def _parse_env(setting: Setting, text: str, where: str | None = None) -> Any:
    where = where or f"environment variable {setting.env_var}"
    try:
        if setting.type is bool:
            low = text.strip().lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError
        if setting.type is int:
            return int(text)
        if setting.type is float:
            return float(text)
        if setting.type is list:
            return [part.strip() for part in text.split(",") if part.strip()]
        if setting.type is dict:
            parsed = tomllib.loads(f"v = {text}")["v"] if text.strip() else {}
            if not isinstance(parsed, dict):
                raise ValueError
            return parsed
    except (ValueError, tomllib.TOMLDecodeError):
        raise ConfigError(f"{where}: '{setting.key}' must be {_type_name(setting.type)}, "
                          f"got {text!r}" if not setting.secret else
                          f"{where}: '{setting.key}' must be {_type_name(setting.type)}") from None
    return text


def _type_name(t: type) -> str:
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false",
            list: "a list", dict: "a table"}.get(t, t.__name__)


def connector_settings(config: Config, name: str,
                       connection_settings: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A connector's settings: its own section ([quickbooks] -> client_id, ...), then
    [plugins.<name>], then the connection's own settings, later ones winning."""
    from blippsync.redaction import register_secret

    prefix = f"{name}."
    merged = {k[len(prefix):]: v for k, v in config.values.items() if k.startswith(prefix)}
    merged.update(config.plugin_settings(name))
    merged.update(connection_settings or {})
    for key, value in merged.items():
        setting = SETTINGS_BY_KEY.get(prefix + key)
        if setting is not None and setting.secret and isinstance(value, str):
            register_secret(value)
    for key in ("client_secret", "webhook_verifier_token"):  # plugins' usual secret names
        if isinstance(merged.get(key), str):
            register_secret(merged[key])
    return merged
