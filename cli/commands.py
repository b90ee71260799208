"""Which module provides which top-level command. Each module exposes ``register(group)``.

Commands are imported lazily: ``asfaload new-keys`` must not pay for importing the HTTP client,
Flask or python-tuf (a full import would dominate the CPU of each invocation in scripted use
such as the demo and CI jobs).
"""

from __future__ import annotations

import importlib

import click

COMMANDS: dict[str, str] = {
    "get-digest": "keys",
    "new-keys": "keys",
    "sign-file": "keys",
    "verify-sig": "keys",
    "new-signers-file": "signers",
    "register-repo": "backend",
    "update-signers": "backend",
    "register-assets": "backend",
    "list-pending": "backend",
    "sign-pending": "backend",
    "signature-status": "backend",
    "revoke": "backend",
    "check-index": "backend",
    "ping": "backend",
    "download": "download",
    "verify-file": "download",
    "serve": "serve",
    "mirror": "mirror",
    "admin": "admin",
    "tuf": "admin",
}


def load(module: str) -> click.Group:
    """Import one command module and return a scratch group holding what it registers."""
    scratch = click.Group()
    importlib.import_module(f"{__package__}.{module}").register(scratch)
    return scratch


class LazyGroup(click.Group):
    """A Click group that imports a command's module only when that command runs."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        return load(module).commands.get(cmd_name)
