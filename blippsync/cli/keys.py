"""`blippsync keys generate|rotate`: the token vault's encryption keys."""

from __future__ import annotations

import click

from blippsync.cli import get_app


@click.group("keys")
def keys() -> None:
    """Encryption keys of the token vault."""


@keys.command("generate")
def generate() -> None:
    """Print a new key. Put it first in BLIPPSYNC_ENCRYPTION_KEYS (or the key file), keep the
    old ones after it, then run `blippsync keys rotate`."""
    from blippsync.vault import generate_key

    click.echo(generate_key())


@keys.command("rotate")
@click.pass_context
def rotate(ctx: click.Context) -> None:
    """Re-encrypt every stored token with the current (first) key. Safe to interrupt and
    run again; safe while daemons run."""
    from blippsync.vault import load_keyring, rotate_keys

    app = get_app(ctx)
    ring = load_keyring(app.config)
    report = rotate_keys(app.ready_db(), ring)
    total = sum(report.reencrypted.values())
    click.echo(f"re-encrypted {total} value(s) under key {ring.current_id} "
               + "(" + ", ".join(f"{t}: {n}" for t, n in report.reencrypted.items()) + ")")
    if report.skipped_changed:
        click.echo(f"{report.skipped_changed} row(s) were refreshed meanwhile (already current)")
    if report.not_ciphertext:
        click.echo(f"warning: {report.not_ciphertext} stored value(s) are not blippsync "
                   "ciphertext and were left alone; reconnect those connections", err=True)


COMMANDS = [keys]
