"""The ``asfaload`` command: one Click group; each domain module registers its commands."""

from __future__ import annotations

import click

from .commands import LazyGroup


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="asfaload")
def cli() -> None:
    """Multi-signature sign-off for software releases."""


def main() -> None:
    cli(prog_name="asfaload")
