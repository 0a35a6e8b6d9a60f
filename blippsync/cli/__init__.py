"""The `blippsync` command line (click: composable groups, exit code 2 for usage errors,
environment-variable defaults, and a test runner, without writing any of it ourselves).

Every failure the user can act on prints one line and exits 1; `--debug` shows the
traceback of anything unexpected.
"""

from __future__ import annotations

import logging
import sys
from typing import TYPE_CHECKING, Any

import click

from blippsync import __version__
from blippsync.app import App
from blippsync.config import load_config
from blippsync.errors import BlippsyncError

if TYPE_CHECKING:
    from blippsync.plugins import Plugins


class _Group(click.Group):
    """Turns BlippsyncError into one line and exit 1; anything else into a short report.
    Plugins' commands (built-in connectors' included) join on first look-up or listing."""

    _plugin_commands_added = False

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        self._add_plugin_commands(ctx)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self._add_plugin_commands(ctx)
        return super().list_commands(ctx)

    def _add_plugin_commands(self, ctx: click.Context) -> None:
        if self._plugin_commands_added:
            return
        self._plugin_commands_added = True
        from blippsync.cli.connect import connect, disconnect

        get_plugins(ctx).add_commands(self, connect, disconnect)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except BlippsyncError as exc:
            _fail(ctx, str(exc), exc)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except BrokenPipeError:  # `blippsync ... | head`: the reader left, nothing to report
            _silence_stdout()
            ctx.exit(1)
        except Exception as exc:  # a bug: say so, keep the traceback for --debug
            _fail(ctx, f"internal error: {type(exc).__name__}: {exc} "
                       "(run with --debug for the traceback)", exc)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (tests capture output)
        pass


def _fail(ctx: click.Context, message: str, exc: BaseException) -> None:
    if (ctx.obj or {}).get("debug"):
        import traceback

        traceback.print_exception(exc)
    from blippsync.redaction import redact

    click.echo(f"error: {redact(message)}", err=True)
    ctx.exit(1)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"],
                                           "auto_envvar_prefix": "BLIPPSYNC"})
@click.version_option(__version__, "--version", prog_name="blippsync")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), envvar="BLIPPSYNC_CONFIG",
              help="Configuration file (default: ./config.toml if present).")
@click.option("--debug", is_flag=True, help="Show tracebacks of unexpected errors.")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, debug: bool) -> None:
    """blippsync: sync CRM customers and events, and walk them through review journeys."""
    ctx.obj = {**(ctx.obj or {}), "debug": debug, "config_path": config_path}


def get_app(ctx: click.Context) -> App:
    """The App for this invocation, loading configuration on first use."""
    root = ctx.find_root()
    obj = root.obj
    if "app" not in obj:
        config = load_config(obj["config_path"])
        from blippsync.logs import configure_logging

        configure_logging(config, debug=obj["debug"])
        app = App(config)
        obj["app"] = app
        root.call_on_close(app.close)
    app_: App = obj["app"]
    return app_


def get_plugins(ctx: click.Context) -> Plugins:
    """The loaded plugins for this invocation (loaded once)."""
    root = ctx.find_root()
    if root.obj is None:
        root.obj = {}
    obj = root.obj
    if "plugins" not in obj:
        from blippsync.plugins import load_plugins

        obj["plugins"] = load_plugins()
    plugins: Plugins = obj["plugins"]
    return plugins


def _register_commands() -> None:
    from blippsync.cli import (
        admin,
        businesses,
        connect,
        console,
        credentials,
        daemon,
        demo,
        directory,
        export,
        journeys,
        keys,
        messages,
        qr,
        sync,
    )

    for module in (admin, businesses, sync, demo, daemon, journeys, connect, keys,
                   credentials, console, directory, export, messages, qr):
        for command in module.COMMANDS:
            cli.add_command(command)


_register_commands()


def main() -> None:
    logging.captureWarnings(True)
    from blippsync.plugins import load_plugins

    plugins = load_plugins()  # their commands join the CLI on first look-up (_Group)
    sys.exit(cli.main(prog_name="blippsync", standalone_mode=True, obj={"plugins": plugins}))
