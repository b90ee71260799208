"""``asfaload download`` and ``asfaload verify-file``: verify a release file's signatures, from a
backend or a git mirror, before saving it (or, for a file already on disk, before saying so).

Prints the manual's lines on stdout; on a terminal the progress line updates in place, with
sizes in binary units (KiB, MiB, GiB), the speed and the time left; otherwise (a pipe or a file,
what scripts read) the manual's lines are printed byte for byte, the progress once at the end. A
revoked file prints the manual's block on stderr and exits 1.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from asfaload.client.download import (
    Reporter,
    download,
    duration_text,
    human_size,
    mb,
    verify_local_file,
)
from asfaload.client.locate import FORGE_TYPES
from asfaload.client.source import CACHE_DIR_ENV, ReleaseSource
from asfaload.client.transfer import HASH_LABELS
from asfaload.client.verify import Revocation
from asfaload.errors import RefusingToOverwriteError

from ._common import (
    BACKEND_URL_ENV,
    BackendUrls,
    backend_url_option,
    dumps_compact,
    handle_errors,
    json_option,
)

F = TypeVar("F", bound=Callable[..., Any])


def _progress_text(done: int, total: int) -> str:
    """The manual's progress line (printed once, at the end, when stdout is not a terminal)."""
    pct = 100.0 * done / total if total else 100.0
    return f"Progress: {pct:.1f}% ({mb(done)} / {mb(total)})"


def live_progress_text(done: int, total: int, elapsed: float, finished: bool = False) -> str:
    """The progress line a person watches: binary units, speed, and the time left (or, once
    finished, the time it took). The speed is the average since the transfer started."""
    pct = 100.0 * done / total if total else 100.0
    head = f"Progress: {pct:.1f}% ({human_size(done)} / {human_size(total)}"
    if elapsed <= 0 or done <= 0:
        return head + ")"
    speed = done / elapsed
    if finished:
        return f"{head}, {human_size(speed)}/s, in {duration_text(elapsed)})"
    left = max(total - done, 0) / speed
    return f"{head}, {human_size(speed)}/s, {duration_text(left)} left)"


class ConsoleReporter(Reporter):
    """The manual's human output (quiet with ``--json`` apart from the revocation block)."""

    def __init__(self, quiet: bool = False, tty: bool | None = None) -> None:
        self.quiet = quiet
        self.tty = sys.stdout.isatty() if tty is None else tty
        self._last = 0.0
        self._shown = False
        self._started = 0.0
        self._width = 0  # of the last live line, to blank what a shorter one leaves behind

    def size_text(self, n: int) -> str:
        return human_size(n) if self.tty else mb(n)

    def _redraw(self, text: str, end: bool = False) -> None:
        padded = text.ljust(self._width)
        self._width = len(text)
        click.echo("\r" + padded, nl=end)

    def line(self, text: str) -> None:
        if not self.quiet:
            click.echo(text)

    def warning(self, text: str) -> None:
        if not self.quiet:
            click.echo(text)

    def revoked(self, revocation: Revocation) -> None:
        if self.quiet:
            return  # --json: the error object on stderr says it all
        click.echo("This file has been revoked.", err=True)
        click.echo(f"  Revoked at: {revocation.revoked_at}", err=True)
        click.echo(f"  Revoked by: {revocation.revoked_by}", err=True)

    def transfer_started(self, file_name: str, size: int | None) -> None:
        self._started = time.monotonic()
        if not self.quiet and size is not None:
            click.echo(f"  Size: {self.size_text(size)}")

    def progress(self, done: int, total: int | None) -> None:
        if self.quiet or not self.tty or total is None:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and done != total:
            return  # a terminal redraw per chunk would cost more than the transfer
        self._last = now
        self._shown = True
        self._redraw(live_progress_text(done, total, now - self._started))

    def transfer_finished(self, done: int, total: int | None) -> None:
        if self.quiet or total is None:
            return
        if self.tty:
            elapsed = time.monotonic() - self._started
            self._redraw(live_progress_text(done, total, elapsed, finished=True), end=True)
        else:
            click.echo(_progress_text(done, total))


def mirror_option(f: F) -> F:
    return click.option(
        "--mirror",
        "mirror",
        metavar="PATH_OR_GIT_URL",
        default=None,
        help="Verify against a git mirror instead of a backend: a local mirror repository (bare, "
        "a clone, or a server data dir), or a git URL fetched into "
        f"$XDG_CACHE_HOME/asfaload/mirrors/ (or ${CACHE_DIR_ENV}/mirrors/). Its history is "
        "replayed through the rules before use: all of it the first time, then only the commits "
        "after the tip this client verified there before (kept in its cache, never taken from "
        "the mirror; a main that does not contain that tip is refused). No asfaload backend is "
        "contacted, so it cannot be given with -u "
        f"(a backend in ${BACKEND_URL_ENV} is not used). With a mirror you do not run, add "
        "--full-check: a replay cannot check what came from the forge.",
    )(f)


@contextmanager
def release_source(mirror: str | None, backend_url: BackendUrls) -> Iterator[ReleaseSource]:
    """The source of a release's facts: the ``--mirror`` when given, else the backends."""
    if mirror is not None:
        ctx = click.get_current_context(silent=True)
        if (
            ctx is not None
            and ctx.get_parameter_source("backend_url") is ParameterSource.COMMANDLINE
        ):
            # Two sources of truth on one command line is a mistake to point out, not to settle
            # silently for one of them.
            raise click.UsageError("Give -u or --mirror, not both: --mirror contacts no backend.")
        from asfaload.client.source import open_mirror

        with open_mirror(mirror) as source:
            yield source
        return
    from asfaload.client.api import BackendClient

    with BackendClient(backend_url) as api:
        yield api


def verification_options(f: F) -> F:
    """Where the facts come from and how far to check, as ``download`` and ``verify-file``
    share them: ``-u`` backends or ``--mirror``, ``--type``, ``--full-check``, ``--json``."""
    f = json_option(f)
    f = click.option(
        "--full-check",
        is_flag=True,
        help="Also verify the signers chain from its forge-published signers file (fetches it).",
    )(f)
    f = click.option(
        "--type",
        "forge_type",
        type=click.Choice(FORGE_TYPES),
        help="Override automatic forge type detection.",
    )(f)
    return backend_url_option(mirror_option(f))


@click.command("download")
@click.argument("file_url")
@click.option("-o", "--output", help="Output file path. Defaults to the filename from the URL.")
@click.option(
    "-f",
    "--force",
    is_flag=True,
    help="Replace the output file if it exists (without it an existing file is refused, "
    "before anything is fetched, and left as it is).",
)
@verification_options
@handle_errors
def download_cmd(
    file_url: str,
    output: str | None,
    force: bool,
    backend_url: BackendUrls,
    mirror: str | None,
    forge_type: str | None,
    full_check: bool,
    json_output: bool,
) -> None:
    """Download FILE_URL and verify its signatures before saving it.

    The release's index, signatures and revocation are read from the backend (-u, tried in
    order) or from a git mirror (--mirror); the file itself always comes from its forge URL,
    through a temporary file renamed into place only once its digest matches the signed index.

    \b
    Examples:
      asfaload download https://github.com/acme/app/releases/download/v1.0/app.tar.gz
      asfaload download URL -u https://asfaload.example -u https://mirror2.example
      asfaload download URL --mirror https://mirror.example/mirror.git --full-check
      asfaload download URL --mirror ./asfaload-data -o app.tar.gz --force --json
    """
    reporter = ConsoleReporter(quiet=json_output)
    try:
        with release_source(mirror, backend_url) as source:
            res = download(
                file_url,
                source,
                output=output,
                forge=forge_type,
                full_check=full_check,
                reporter=reporter,
                overwrite=force,
            )
    except RefusingToOverwriteError as exc:
        raise RefusingToOverwriteError(f"{exc} (give --force to replace it)") from None
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


@click.command("verify-file")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--url",
    "file_url",
    required=True,
    help="The URL FILE was published at (it names the release; nothing is downloaded from it).",
)
@verification_options
@handle_errors
def verify_file_cmd(
    file: Path,
    file_url: str,
    backend_url: BackendUrls,
    mirror: str | None,
    forge_type: str | None,
    full_check: bool,
    json_output: bool,
) -> None:
    """Verify FILE, already on disk, as the signed release file published at --url.

    The same checks as `download` (revocation, signature thresholds, the file's digest in the
    signed index), against the backend (-u) or a git mirror (--mirror). With a local mirror
    path and no --full-check, nothing goes over the network. Exit 0 when valid, 1 with one
    line when the file is tampered, unsigned, pending or revoked.

    \b
    Examples:
      asfaload verify-file app.tar.gz --url https://github.com/acme/app/releases/download/v1.0/app.tar.gz
      asfaload verify-file app.tar.gz --url URL --mirror /srv/asfaload-data
      asfaload verify-file app.tar.gz --url URL --mirror https://mirror.example/mirror.git --json
    """
    with release_source(mirror, backend_url) as source:
        res = verify_local_file(file, file_url, source, forge=forge_type, full_check=full_check)
    release = res.release
    if json_output:
        click.echo(
            dumps_compact(
                {
                    "success": True,
                    "file": str(res.path),
                    "file_url": file_url,
                    "index_file_path": release.location.index_path,
                    "size": res.size,
                    "hash_algorithm": res.algo,
                    "valid_signatures": release.valid_signatures,
                    "chain_entries": release.chain_entries,
                    "source": "mirror" if mirror is not None else "backend",
                }
            )
        )
        return
    click.echo(
        f"✓ {res.path}: verified ({HASH_LABELS[res.algo]} in the signed index "
        f"{release.location.index_path}, {release.valid_signatures} valid signature(s))"
    )


def register(group: click.Group) -> None:
    group.add_command(download_cmd)
    group.add_command(verify_file_cmd)
