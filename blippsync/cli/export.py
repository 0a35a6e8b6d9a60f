"""`blippsync export` and `blippsync restore`: a business's data out to files and back."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import click

from blippsync.cli import get_app
from blippsync.cli.output import echo_json


@click.command("export")
@click.option("--business", "business_id", required=True, help="The business's id.")
@click.option("--format", "file_format", type=click.Choice(["jsonl", "csv"]), default="jsonl",
              show_default=True, help="One JSON object per line, or CSV with a header.")
@click.option("--output", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write (created; must be empty).")
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as JSON.")
@click.pass_context
def export(ctx: click.Context, business_id: str, file_format: str, output: Path,
           as_json: bool) -> None:
    """Write every row a business owns, one file per table, with a manifest (counts,
    checksums, schema version). Tokens and other secrets are never written."""
    from blippsync.export import export_business

    def progress(table: str, rows: int) -> None:
        if not as_json and rows:
            click.echo(f"  {table}: {rows:,} rows", err=True)

    manifest = export_business(get_app(ctx).ready_db(), business_id, output, file_format,
                               progress)
    if as_json:
        echo_json(asdict(manifest))
        return
    click.echo(f"exported {manifest.total_rows:,} rows of business {manifest.business_id} "
               f"from {len(manifest.tables)} tables to {output} ({file_format}; schema "
               f"{manifest.schema_version})")
    for skipped in manifest.skipped_tables:
        click.echo(f"  not exported: {skipped['name']} ({skipped['why']})")


@click.command("restore")
@click.argument("folder", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option("--business", "business_id",
              help="Restore under this business id (default: the export's own; another id "
                   "gives every row a new id, consistently).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def restore(ctx: click.Context, folder: Path, business_id: str | None, as_json: bool) -> None:
    """Restore an export into an empty business, in this or another database (checksums
    and schema checked first; one transaction: all or nothing)."""
    from blippsync.export import restore_business

    def progress(table: str, rows: int) -> None:
        if not as_json and rows:
            click.echo(f"  {table}: {rows:,} rows", err=True)

    result = restore_business(get_app(ctx).ready_db(), folder, business_id, progress)
    if as_json:
        echo_json(asdict(result))
        return
    click.echo(f"restored {sum(result.rows.values()):,} rows into "
               f"{'new' if result.business_created else 'empty'} business {result.business_id}"
               + (" (ids remapped)" if result.ids_remapped else " (ids kept)")
               + "; connections come back without tokens: connect them again")


COMMANDS = [export, restore]
