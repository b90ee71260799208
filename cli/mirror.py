"""``asfaload mirror``: create a mirror repository and replay its history through the rules."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from asfaload.errors import AsfaloadError

DATA_DIR_ENV = "ASFALOAD_DATA_DIR"
DEFAULT_DATA_DIR = "asfaload-data"
MIRROR_DIR = "mirror.git"


def _repo_path(target: Path | None, data_dir: Path | None, repo: Path | None) -> Path:
    """The bare repository to act on: ``--repo``, ``--data-dir``/mirror.git, or DIR (a repo or
    a data dir), else the default data dir."""
    given = [x for x in (target, data_dir, repo) if x is not None]
    if len(given) > 1:
        raise click.UsageError("Give only one of DIR, --data-dir and --repo.")
    if repo is not None:
        return repo
    if target is not None:
        inner = target / MIRROR_DIR
        return inner if inner.is_dir() else target
    base = (
        data_dir if data_dir is not None else Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)
    )
    return base / MIRROR_DIR


@click.group("mirror")
def mirror_group() -> None:
    """Manage and check the git mirror repository."""


@mirror_group.command("init")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def init_command(directory: Path) -> None:
    """Create a bare mirror repository (branch main, hooks, config) in DIRECTORY."""
    from asfaload.store import Mirror

    try:
        Mirror.init(str(directory)).close()
    except AsfaloadError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Initialised mirror in {directory}")


@mirror_group.command("verify")
@click.argument(
    "target", required=False, type=click.Path(file_okay=False, exists=True, path_type=Path)
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help=f"Server data dir holding {MIRROR_DIR} (env {DATA_DIR_ENV}; default ./{DEFAULT_DATA_DIR}).",
)
@click.option(
    "--repo",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Path of the bare mirror repository itself.",
)
@click.option("--json", "json_output", is_flag=True, help="Emit the report as JSON.")
def verify_command(
    target: Path | None, data_dir: Path | None, repo: Path | None, json_output: bool
) -> None:
    """Replay the whole history of main through the rules engine.

    Every commit must be exactly what the rules derive from its parent. Reports the first bad
    commit and exits 1 if there is one.
    """
    from asfaload.verify import verify_repository

    path = _repo_path(target, data_dir, repo)
    if not path.is_dir():
        raise click.ClickException(f"No mirror repository at {path}")
    try:
        report = verify_repository(str(path))
    except AsfaloadError as exc:
        raise click.ClickException(f"{exc}: {path}") from exc
    if json_output:
        click.echo(json.dumps(report.to_dict(), indent=2))
    elif report.bad is None:
        click.echo(
            f"OK: {report.checked} commits of main replayed, each derived by the rules "
            f"(head {report.head})"
        )
    else:
        bad = report.bad
        where = f"commit {bad.commit} (#{bad.position}, {bad.message!r})" if bad.commit else "main"
        click.echo(f"FAILED: {where}: {bad.reason}")
        click.echo(f"{report.checked} commits before it verified.")
    if report.bad is not None:
        raise SystemExit(1)


def register(group: click.Group) -> None:
    group.add_command(mirror_group)
