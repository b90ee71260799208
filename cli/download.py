"""``asfaload download``: fetch a file and verify its signatures before saving it.

Prints the manual's lines on stdout; on a terminal the progress line updates in place, otherwise
it is printed once at the end. A revoked file prints the manual's block on stderr and exits 1.
"""

from __future__ import annotations

import sys
import time

import click

from asfaload.client.api import BackendClient
from asfaload.client.download import Reporter, download, mb
from asfaload.client.locate import FORGE_TYPES
from asfaload.client.verify import Revocation

from ._common import backend_url_option, dumps_compact, handle_errors, json_option


def _progress_text(done: int, total: int) -> str:
    pct = 100.0 * done / total if total else 100.0
    return f"Progress: {pct:.1f}% ({mb(done)} / {mb(total)})"


class ConsoleReporter(Reporter):
    """The manual's human output (quiet with ``--json`` apart from the revocation block)."""

    def __init__(self, quiet: bool = False, tty: bool | None = None) -> None:
        self.quiet = quiet
        self.tty = sys.stdout.isatty() if tty is None else tty
        self._last = 0.0
        self._shown = False

    def line(self, text: str) -> None:
        if not self.quiet:
            click.echo(text)

    def warning(self, text: str) -> None:
        if not self.quiet:
            click.echo(text)

    def revoked(self, revocation: Revocation) -> None:
        click.echo("This file has been revoked.", err=True)
        click.echo(f"  Revoked at: {revocation.revoked_at}", err=True)
        click.echo(f"  Revoked by: {revocation.revoked_by}", err=True)

    def transfer_started(self, file_name: str, size: int | None) -> None:
        if not self.quiet and size is not None:
            click.echo(f"  Size: {mb(size)}")

    def progress(self, done: int, total: int | None) -> None:
        if self.quiet or not self.tty or total is None:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and done != total:
            return  # a terminal redraw per chunk would cost more than the transfer
        self._last = now
        self._shown = True
        click.echo("\r" + _progress_text(done, total), nl=False)

    def transfer_finished(self, done: int, total: int | None) -> None:
        if self.quiet or total is None:
            return
        if self.tty:
            click.echo("\r" + _progress_text(done, total))
        else:
            click.echo(_progress_text(done, total))


@click.command("download")
@click.argument("file_url")
@click.option("-o", "--output", help="Output file path. Defaults to the filename from the URL.")
@backend_url_option
@click.option(
    "--type",
    "forge_type",
    type=click.Choice(FORGE_TYPES),
    help="Override automatic forge type detection.",
)
@click.option(
    "--full-check",
    is_flag=True,
    help="Verify the full signers chain history (from the forge-published signers file).",
)
@json_option
@handle_errors
def download_cmd(
    file_url: str,
    output: str | None,
    backend_url: str,
    forge_type: str | None,
    full_check: bool,
    json_output: bool,
) -> None:
    """Download FILE_URL and verify its signatures before saving it."""
    reporter = ConsoleReporter(quiet=json_output)
    with BackendClient(backend_url) as api:
        res = download(
            file_url,
            api,
            output=output,
            forge=forge_type,
            full_check=full_check,
            reporter=reporter,
        )
    if json_output:
        click.echo(
            dumps_compact(
                {
                    "success": True,
                    "file_url": file_url,
                    "index_file_path": res.location.index_path,
                    "output": str(res.path),
                    "size": res.size,
                    "hash_algorithm": res.algo,
                    "valid_signatures": res.valid_signatures,
                    "chain_entries": res.chain_entries,
                }
            )
        )


def register(group: click.Group) -> None:
    group.add_command(download_cmd)
