"""``asfaload dev``: try asfaload by hand on one machine, without GitHub.

``dev forge`` runs the forge emulator the demo and the tests use (``asfaload.devtools.forge``:
github.com, gitlab.com and a file server on one loopback port) and prints the ``export`` lines
that point the server and the client at it; ``dev publish`` puts a file where the emulator serves
a forge URL, as a ``git push`` or a release upload would on the real forge. Nothing here is
imported by the library: the emulator stays out of the service's code paths.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from asfaload.layout import DEFAULT_BACKEND_URL, DEFAULT_DATA_DIR

from ._common import BACKEND_URL_ENV, DATA_DIR_ENV, dumps_compact, handle_errors, json_option

DEFAULT_FORGE_PORT = 8765
DEFAULT_FORGE_DIR = "forge"


def _forge_dir_option(f: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--dir",
        "root",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path(DEFAULT_FORGE_DIR),
        show_default=True,
        help="Directory holding what the emulated forges serve.",
    )(f)


@click.group("dev")
def dev_group() -> None:
    """Try asfaload by hand on this machine: a local forge emulator instead of GitHub.

    \b
    Examples:
      asfaload dev forge --dir ./forge
      asfaload dev publish signers.json https://github.com/acme/tool/blob/main/asfaload.signers/asfaload.signers.json
    """


@dev_group.command("forge")
@_forge_dir_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_FORGE_PORT,
    show_default=True,
    help="Port to listen on (0: any free port).",
)
@click.option(
    "-u",
    "--backend-url",
    default=None,
    help=f"The asfaload server the client should use, for the export lines (env "
    f"{BACKEND_URL_ENV}; default {DEFAULT_BACKEND_URL}, where `asfaload serve` listens).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"The server's data dir, for the export lines (env {DATA_DIR_ENV}; default "
    f"./{DEFAULT_DATA_DIR}); written as an absolute path so every shell agrees.",
)
@json_option
@handle_errors
def forge_command(
    root: Path,
    host: str,
    port: int,
    backend_url: str | None,
    data_dir: Path | None,
    json_output: bool,
) -> None:
    """Run the forge emulator (github.com, gitlab.com, files.example.com) until Ctrl-C.

    It first prints the export lines for the shells that run `asfaload serve` and the client
    (a shell can read them back: `asfaload dev forge > forge.env &` then `. ./forge.env`);
    with --json, one object {"origin", "root", "env"} instead. Publish files on it with
    `asfaload dev publish`. docs/try-it-by-hand.md walks through a release with it.

    \b
    Examples:
      asfaload dev forge --dir ./forge
      asfaload dev forge --dir ./forge --port 0 --json
    """
    from asfaload.devtools.forge import ForgeEmulator, export_lines, try_it_env

    backend = backend_url or os.environ.get(BACKEND_URL_ENV) or DEFAULT_BACKEND_URL
    data = (
        data_dir if data_dir is not None else Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)
    )
    try:
        emu = ForgeEmulator(root, host=host, port=port)
    except OSError as exc:
        from asfaload.errors import NetworkError

        raise NetworkError(
            f"Cannot listen on {host}:{port}: {exc.strerror or exc} (try --port 0)"
        ) from None
    env = try_it_env(emu.origin, backend.split(",")[0].strip(), str(data.resolve()))
    if json_output:
        click.echo(dumps_compact({"origin": emu.origin, "root": str(emu.root), "env": env}))
    else:
        click.echo(
            f"# Forge emulator on {emu.origin}, serving {root} as github.com, gitlab.com and "
            "files.example.com (Ctrl-C stops it)."
        )
        click.echo(
            f"# Publish a file: asfaload dev publish FILE URL --dir {root}. Run these lines "
            "in each shell that runs asfaload (server and client):"
        )
        for line in export_lines(env):
            click.echo(line)
    sys.stdout.flush()  # the lines must reach a file or a pipe before the server blocks
    try:
        emu.serve_forever()
    except KeyboardInterrupt:
        return


@dev_group.command("publish")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.argument("url")
@_forge_dir_option
@json_option
@handle_errors
def publish_command(file: Path, url: str, root: Path, json_output: bool) -> None:
    """Publish FILE on the forge emulator at URL, as a push or a release upload would.

    URL is what people would see on the real forge: a repository file's blob page
    (https://github.com/OWNER/REPO/blob/REF/PATH, https://gitlab.com/GROUP/PROJECT/-/blob/REF/PATH),
    a release asset's download URL (.../releases/download/TAG/NAME, GitLab
    .../-/releases/TAG/downloads/NAME: the release exists once it has an asset) or a
    https://files.example.com/ file. The emulator need not be running.

    \b
    Examples:
      asfaload dev publish signers.json https://github.com/acme/tool/blob/main/asfaload.signers/asfaload.signers.json
      asfaload dev publish tool.tar.gz https://github.com/acme/tool/releases/download/v1.0/tool.tar.gz
      asfaload dev publish SHA256SUMS https://files.example.com/acme/tool/v1.0/SHA256SUMS --json
    """
    from asfaload.devtools.forge import publish
    from asfaload.errors import FormatError

    try:
        dest = publish(root, url, file.read_bytes())
    except ValueError as exc:
        raise FormatError(str(exc)) from None
    if json_output:
        click.echo(dumps_compact({"file": str(file), "url": url, "path": str(dest)}))
    else:
        click.echo(f"Published {file} at {url}")


def register(group: click.Group) -> None:
    group.add_command(dev_group)
