"""`blippsync console`: the operator console served alone against the database, and
`blippsync console hash-password` to make its console.password_hash."""

from __future__ import annotations

import sys

import click

from blippsync.cli import get_app


@click.group("console", invoke_without_command=True)
@click.option("--host", default=None, help="Listen address (default: console.host).")
@click.option("--port", type=int, default=None, help="Listen port (default: console.port).")
@click.pass_context
def console(ctx: click.Context, host: str | None, port: int | None) -> None:
    """Serve the read-only operator console alone (docs/console.md); Ctrl-C stops it."""
    if ctx.invoked_subcommand is not None:
        return
    import uvicorn

    from blippsync.console import standalone_app
    from blippsync.proxy_peer import keep_peer

    app = get_app(ctx)
    db = app.ready_db()
    db.check()
    web = standalone_app(app.config, db)  # refuses to start without a sign-in method
    host = host or app.config["console.host"]
    port = app.config["console.port"] if port is None else port
    click.echo(f"console on http://{host}:{port}{app.config['console.path']}/", err=True)
    uvicorn.run(keep_peer(web), host=host, port=port, log_config=None, access_log=False,
                server_header=False, lifespan="off", proxy_headers=False)


@console.command("hash-password")
@click.option("--stdin", "from_stdin", is_flag=True,
              help="Read the password from the first line of standard input.")
def hash_password_(from_stdin: bool) -> None:
    """Print an scrypt hash of a password or token for console.password_hash."""
    from blippsync.console.auth import hash_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Operator password", hide_input=True,
                                confirmation_prompt=True)
    if len(password) < 12:
        raise click.UsageError("use at least 12 characters (a long random token is best: "
                               "python -c 'import secrets; print(secrets.token_urlsafe(24))')")
    click.echo(hash_password(password))


COMMANDS = [console]
