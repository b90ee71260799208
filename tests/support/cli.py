"""The CLI's command tree, walked."""

from __future__ import annotations

import click
from asfaload.cli.main import cli


def leaf_commands() -> list[tuple[str, ...]]:
    """Every runnable command of the tree, as its words (``("tuf", "root", "new")``)."""
    found: list[tuple[str, ...]] = []

    def walk(cmd: click.Command, path: tuple[str, ...]) -> None:
        if isinstance(cmd, click.Group):
            ctx = click.Context(cmd)
            for name in cmd.list_commands(ctx):
                sub = cmd.get_command(ctx, name)
                assert sub is not None, name
                walk(sub, (*path, name))
        else:
            found.append(path)

    walk(cli, ())
    return found
