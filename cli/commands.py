"""Which module provides which top-level command. Each module exposes ``register(group)``.

Commands are imported lazily: ``asfaload new-keys`` must not pay for importing the HTTP client,
Flask or python-tuf (a full import would dominate the CPU of each invocation in scripted use
such as the demo and CI jobs).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

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
    "tuf": "tuf",
    "dev": "dev",
}

# ``asfaload --help`` lists the commands by who runs them, in this order; every command of
# COMMANDS is in exactly one role (tests/test_cli_grammar.py checks it).
ROLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Signers", ("new-keys", "get-digest", "sign-file", "list-pending", "sign-pending")),
    (
        "Maintainers",
        ("new-signers-file", "register-repo", "update-signers", "register-assets", "revoke"),
    ),
    ("Users", ("download", "verify-file", "verify-sig", "check-index", "signature-status")),
    ("Operators", ("serve", "ping", "mirror", "admin", "tuf", "dev")),
)


def load(module: str) -> click.Group:
    """Import one command module and return a scratch group holding what it registers."""
    scratch = click.Group()
    importlib.import_module(f"{__package__}.{module}").register(scratch)
    return scratch


def _wants_json(args: Sequence[str]) -> bool:
    """Whether ``--json`` is among the options (before a ``--``): then even a usage error is
    answered as one JSON object, which Click's own handling does not know to do."""
    for arg in args:
        if arg == "--":
            return False
        if arg == "--json":
            return True
    return False


class LazyGroup(click.Group):
    """A Click group that imports a command's module only when that command runs, lists the
    commands by role, and answers errors the same way for every command."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        return load(module).commands.get(cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        limit = formatter.width - 6 - max(len(n) for n in COMMANDS)
        for role, names in ROLES:
            rows = []
            for name in names:
                cmd = self.get_command(ctx, name)
                if cmd is not None and not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str(limit)))
            if rows:
                with formatter.section(f"Commands for {role.lower()}"):
                    formatter.write_dl(rows)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        """Click's ``main``, answering every failure the same way: one line ``Error: …`` on
        stderr, or with ``--json`` one ``{"error": …}`` object (usage errors too, which
        Click's own handling prints as text), exit 2 for usage and 1 otherwise. An operating
        system error (a path that is a file, a directory that cannot be made) is such a line
        too, never a traceback."""
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        argv = list(sys.argv[1:] if args is None else args)
        as_json = _wants_json(argv)
        try:
            rv = super().main(argv, prog_name, complete_var, False, **extra)
        except click.ClickException as exc:
            if as_json:
                _error_exit(exc.format_message(), exc.exit_code, True)
            exc.show()
            sys.exit(exc.exit_code)
        except click.Abort:
            _error_exit("Aborted", 1, as_json)
        except OSError as exc:
            what = exc.strerror or str(exc)
            _error_exit(f"{what}: {exc.filename}" if exc.filename else what, 1, as_json)
        # Standalone Click ends the process with the command's exit code; so do we.
        sys.exit(rv if isinstance(rv, int) else 0)


def _error_exit(message: str, code: int, as_json: bool) -> NoReturn:
    from ._common import dumps_compact, one_line

    text = one_line(message)
    click.echo(dumps_compact({"error": text}) if as_json else f"Error: {text}", err=True)
    sys.exit(code)
