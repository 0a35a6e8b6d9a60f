"""`blippsync run`: the service. Every option also comes from settings ([daemon], [http])."""

from __future__ import annotations

import click

from blippsync.cli import get_app, get_plugins


@click.command("run")
@click.option("--host", default=None, help="Listen address (default: http.host).")
@click.option("--port", type=int, default=None, help="Listen port (default: http.port).")
@click.option("--workers", type=int, default=None,
              help="Connections synced at once (default: daemon.workers).")
@click.option("--no-http", is_flag=True, help="Serve no HTTP (webhooks go to another replica).")
@click.pass_context
def run(ctx: click.Context, host: str | None, port: int | None, workers: int | None,
        no_http: bool) -> None:
    """Run the service until SIGTERM/SIGINT: syncs, webhooks, journeys, health, metrics."""
    from blippsync.channels.readiness import announce_channels
    from blippsync.daemon import Daemon

    app = get_app(ctx)
    overrides = {k: v for k, v in {"http__host": host, "http__port": port,
                                   "daemon__workers": workers}.items() if v is not None}
    if no_http:
        overrides["http__enabled"] = False
    config = app.config.with_values(**overrides)
    announce_channels(config)
    if config["http.enabled"] and config["console.enabled"]:
        from blippsync.console import check_console

        check_console(config)  # a misconfigured console stops the start, not the service later
    db = app.ready_db()
    db.check()
    daemon = Daemon(config, db, get_plugins(ctx))
    ctx.exit(daemon.run())


COMMANDS = [run]
