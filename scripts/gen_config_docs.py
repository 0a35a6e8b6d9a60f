"""Generate the configuration reference from blippsync/settings.py.

    python scripts/gen_config_docs.py            # print the README's markdown table
    python scripts/gen_config_docs.py --toml     # print a commented config.toml
    python scripts/gen_config_docs.py --cli      # print the README's command table
    python scripts/gen_config_docs.py --write    # update README.md's and docs/deployment.md's
                                                 # tables and config.toml

settings.py is the single source of truth; tests/test_docs.py fails when README.md or
config.toml drift from it, and this script is how to bring them back.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from blippsync.settings import SETTINGS, Setting  # noqa: E402

BEGIN = "<!-- BEGIN CONFIG REFERENCE (scripts/gen_config_docs.py --write) -->"
END = "<!-- END CONFIG REFERENCE -->"
CLI_BEGIN = "<!-- BEGIN CLI REFERENCE (scripts/gen_config_docs.py --write) -->"
CLI_END = "<!-- END CLI REFERENCE -->"
DEPLOY_BEGIN = "<!-- BEGIN SERVICE SETTINGS (scripts/gen_config_docs.py --write) -->"
DEPLOY_END = "<!-- END SERVICE SETTINGS -->"
# The sections docs/deployment.md lists for operators of `blippsync run`.
SERVICE_SECTIONS = ("database", "logging", "daemon", "http")
# Keys written out (not commented) in config.toml: the choice of database is explicit.
ACTIVE_KEYS = {"database.url", "database.data_dir"}
_TYPE_NAMES = {str: "string", int: "integer", float: "number", bool: "boolean",
               list: "list of strings", dict: "table"}

TOML_HEADER = """\
# blippsync configuration: a working example. Every key is listed with its default; the
# commented ones ("# key = value") keep that default. Uncomment a line to change it.
#
# Every key can also come from the environment: BLIPPSYNC_ + the dotted key in capitals,
# dots as underscores (database.url -> BLIPPSYNC_DATABASE_URL). The environment wins over
# this file. Lists are comma-separated there, tables are TOML inline tables.
#
# Secrets (database passwords, client secrets, encryption keys) never need to sit in this
# file: set the BLIPPSYNC_* variable, or point the key at another variable or a file:
#     password = { "$env" = "SMTP_PASSWORD" }
#     password = { "$file" = "/run/secrets/smtp_password" }
#
# Relative paths are relative to this file's folder. Another file: blippsync --config PATH
# (or BLIPPSYNC_CONFIG). The reference with every key is in README.md.
"""


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot render {value!r} as TOML")


def _secret_env_example(setting: Setting) -> str:
    return setting.key.upper().replace(".", "_")


def markdown_table() -> str:
    lines = ["| Key | Environment variable | Type | Default | Description |",
             "|---|---|---|---|---|"]
    for s in SETTINGS:
        help_text = s.help.replace("|", "\\|")
        if s.secret:
            help_text += " **Secret**: set it in the environment or with `$env`/`$file`."
        default = toml_value(s.default).replace("|", "\\|")
        lines.append(f"| `{s.key}` | `{s.env_var}` | {_TYPE_NAMES.get(s.type, s.type.__name__)} "
                     f"| `{default}` | {help_text} |")
    return "\n".join(lines) + "\n"


def service_table() -> str:
    """docs/deployment.md's table of the service's settings, by environment variable."""
    lines = ["| variable | key | default | meaning |", "|---|---|---|---|"]
    for s in SETTINGS:
        if s.key.split(".", 1)[0] not in SERVICE_SECTIONS:
            continue
        help_text = s.help.replace("|", "\\|") + (" **Secret.**" if s.secret else "")
        default = toml_value(s.default).replace("|", "\\|")
        lines.append(f"| `{s.env_var}` | `{s.key}` | `{default}` | {help_text} |")
    return "\n".join(lines) + "\n"


def config_toml() -> str:
    out = [TOML_HEADER]
    section = None
    for s in SETTINGS:
        head, name = s.key.split(".", 1)
        if head != section:
            out.append(f"\n[{head}]\n")
            section = head
        for line in textwrap.wrap(s.help, 90):
            out.append(f"# {line}\n")
        if s.secret:
            out.append(f"# Secret: BLIPPSYNC_{_secret_env_example(s)}, or "
                       f'{name} = {{ "$env" = "{_secret_env_example(s)}" }}\n')
        prefix = "" if s.key in ACTIVE_KEYS else "# "
        out.append(f"{prefix}{name} = {toml_value(s.default)}\n\n")
    out.append("\n# Plugin connectors read their own settings from [plugins.<name>] tables,\n"
               "# handed to them whole, for example:\n# [plugins.salesforce]\n"
               '# instance_url = "https://example.my.salesforce.com"\n')
    return "".join(out).replace("\n\n\n", "\n\n")


def command_paths() -> list[tuple[tuple[str, ...], Any]]:
    """Every command and subcommand of the CLI, depth first, with its click object: the
    core's and the built-in connectors'. A separately installed plugin's commands (the
    Stripe plugin's `stripe`) are documented in its own README, so the table does not
    depend on what happens to be installed."""
    import click

    from blippsync.cli import cli

    found: list[tuple[tuple[str, ...], Any]] = []

    def walk(group: click.Group, path: tuple[str, ...]) -> None:
        ctx = click.Context(group)
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            module = getattr(command.callback, "__module__", "") or ""
            if not module.startswith(("blippsync.", "connectors.")):
                continue
            found.append(((*path, name), command))
            if isinstance(command, click.Group):
                walk(command, (*path, name))

    walk(cli, ())
    return found


def cli_table() -> str:
    lines = ["| Command | What it does |", "|---|---|"]
    for path, command in command_paths():
        text = command.get_short_help_str(limit=300).replace("|", "\\|")
        lines.append(f"| `blippsync {' '.join(path)}` | {text} |")
    return "\n".join(lines) + "\n"


def replace_reference(readme: str, table: str, begin: str = BEGIN, end: str = END) -> str:
    start, stop = readme.index(begin) + len(begin), readme.index(end)
    return readme[:start] + "\n" + table + readme[stop:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--toml", action="store_true", help="print config.toml instead")
    parser.add_argument("--cli", action="store_true", help="print the command table instead")
    parser.add_argument("--write", action="store_true",
                        help="update README.md's reference and config.toml in place")
    args = parser.parse_args()
    if args.write:
        readme = REPO / "README.md"
        text = replace_reference(readme.read_text(), markdown_table())
        readme.write_text(replace_reference(text, cli_table(), CLI_BEGIN, CLI_END))
        (REPO / "config.toml").write_text(config_toml())
        deployment = REPO / "docs" / "deployment.md"
        deployment.write_text(replace_reference(deployment.read_text(), service_table(),
                                                DEPLOY_BEGIN, DEPLOY_END))
        print("updated README.md, docs/deployment.md and config.toml")
    elif args.cli:
        sys.stdout.write(cli_table())
    elif args.toml:
        sys.stdout.write(config_toml())
    else:
        sys.stdout.write(markdown_table())


if __name__ == "__main__":
    main()
