"""``asfaload serve``: the REST server under gunicorn."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ._common import dumps_compact, handle_errors, json_option


@click.command("serve")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Data directory (mirror.git + private/). Env ASFALOAD_DATA_DIR; default ./asfaload-data.",
)
@click.option("--host", default=None, help="Bind address (env ASFALOAD_HOST; default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="Port (env ASFALOAD_PORT; default 3000).")
@click.option(
    "--workers", type=int, default=None, help="Worker processes (env ASFALOAD_WORKERS; default 1)."
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="TOML configuration file (env ASFALOAD_CONFIG). Flags and env vars override it.",
)
@click.option(
    "--read-only",
    is_flag=True,
    default=None,
    help="Serve a read-only mirror (kept by `asfaload mirror sync`): reads only, writes get 405. "
    "Env ASFALOAD_READ_ONLY.",
)
@click.option(
    "--primary-url",
    default=None,
    metavar="URL",
    help="With --read-only: the primary that refused writes are sent to (env "
    "ASFALOAD_PRIMARY_URL); without it, the upstream synced from is named when it is a public URL.",
)
@click.option(
    "--repo",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The mirror repository, when a git host keeps it elsewhere than DATA_DIR/mirror.git "
    "(env ASFALOAD_REPO); private/ stays in the data dir.",
)
@json_option
@handle_errors
def serve_command(
    data_dir: Path | None,
    host: str | None,
    port: int | None,
    workers: int | None,
    config_file: Path | None,
    read_only: bool | None,
    primary_url: str | None,
    repo: Path | None,
    json_output: bool,
) -> None:
    """Run the REST API server (creates the data dir and mirror on first start).

    It runs until stopped (Ctrl-C or SIGTERM). With --json, stdout holds one object once the
    configuration is read, {"url", "data_dir", "workers", "read_only"}, before the server
    starts; the server's log goes to stderr.

    \b
    Examples:
      asfaload serve
      asfaload serve --data-dir /srv/asfaload-data --host 0.0.0.0 --port 3000 --workers 2
      asfaload serve --data-dir /srv/ro-data --read-only --json
      asfaload serve --data-dir /srv/ro-data --read-only --primary-url https://asfaload.example
    """
    from asfaload.server.config import ServerConfig
    from asfaload.server.serving import serve

    config = ServerConfig.load(
        {
            "data_dir": data_dir,
            "host": host,
            "port": port,
            "workers": workers,
            "read_only": read_only,
            "primary_url": primary_url,
            "repo": repo,
        },
        toml_path=config_file,
    )
    url = f"http://{config.host}:{config.port}"
    if json_output:
        click.echo(
            dumps_compact(
                {
                    "url": url,
                    "data_dir": str(config.data_dir),
                    "workers": config.workers,
                    "read_only": config.read_only,
                }
            )
        )
        sys.stdout.flush()
    else:
        click.echo(
            f"Serving {config.data_dir} on {url} "
            f"({config.workers} worker{'s' if config.workers != 1 else ''}"
            f"{', read-only' if config.read_only else ''})",
            err=True,
        )
    serve(config)


def register(group: click.Group) -> None:
    group.add_command(serve_command)
