"""The ``asfaload`` command: one Click group; each domain module registers its commands."""

from __future__ import annotations

import click

from .commands import LazyGroup


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="asfaload")
def cli() -> None:
    """Multi-signature sign-off for software releases.

    Every command takes --json (one JSON object on stdout; errors one {"error": ...} object
    on stderr) and ends its --help with examples. Exit codes: 0 ok, 1 failure, 2 usage.
    Shell completion: eval "$(_ASFALOAD_COMPLETE=bash_source asfaload)" (zsh_source,
    fish_source for the other shells).

    \b
    Examples:
      asfaload new-keys -n alice -o ~/.asfaload
      asfaload download https://github.com/acme/tool/releases/download/v1.0/tool.tar.gz
      asfaload dev forge --dir ./forge
    """


def main() -> None:
    cli(prog_name="asfaload")
