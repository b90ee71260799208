"""Options and behaviour shared by every command: passwords, secret keys, --json, errors.

Password sources, first match wins (as upstream's client):
  1. ``-p/--password``        2. ``-P/--password-file`` (trailing whitespace trimmed)
  3. ``ASFALOAD_<CMD>_PASSWORD``  4. ``ASFALOAD_<CMD>_PASSWORD_FILE``
  5. an interactive prompt, only when stdin is a terminal; otherwise a clear error (never a hang).
``<CMD>`` is the command name upper-cased with ``-`` → ``_`` (``new-keys`` → ``NEW_KEYS``).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from asfaload.crypto import SecretKey
from asfaload.errors import AsfaloadError, PasswordError
from asfaload.errors import one_line as _fold_spaces
from asfaload.layout import DEFAULT_BACKEND_URL

F = TypeVar("F", bound=Callable[..., Any])

BACKEND_URL_ENV = "ASFALOAD_BACKEND_URL"


def command_env_prefix(command: str | None = None) -> str:
    """``ASFALOAD_NEW_KEYS`` for ``new-keys`` (the current command when not given)."""
    if command is None:
        command = click.get_current_context().info_name or ""
    return "ASFALOAD_" + command.upper().replace("-", "_")


# --- options ------------------------------------------------------------------------------------
def json_option(f: F) -> F:
    return click.option(
        "--json",
        "json_output",
        is_flag=True,
        help="Emit output as JSON instead of human-readable text.",
    )(f)


BackendUrls = tuple[str, ...]


def _backend_urls(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> BackendUrls:
    from asfaload.client.api import parse_backend_urls
    from asfaload.errors import FormatError

    try:
        return parse_backend_urls(value)
    except FormatError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from exc


def backend_url_option(f: F) -> F:
    """``-u/--backend-url``, repeatable; the command gets a tuple of URLs in failover order."""
    return click.option(
        "-u",
        "--backend-url",
        multiple=True,
        default=(DEFAULT_BACKEND_URL,),
        show_default=True,
        envvar=BACKEND_URL_ENV,
        callback=_backend_urls,
        help=f"Backend API URL; repeat it (or give a comma list in {BACKEND_URL_ENV}) for "
        "backends to fail over to, in order, when one cannot be reached.",
    )(f)


def single_backend_url_option(f: F) -> F:
    """``-u/--backend-url`` for commands bound to one server (a login token is per server)."""

    def one(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> str:
        urls = _backend_urls(ctx, param, value)
        if len(urls) > 1:
            raise click.BadParameter(
                "this command talks to one backend; give a single URL", ctx=ctx, param=param
            )
        return urls[0]

    return click.option(
        "-u",
        "--backend-url",
        multiple=True,
        default=(DEFAULT_BACKEND_URL,),
        show_default=True,
        envvar=BACKEND_URL_ENV,
        callback=one,
        help=f"Backend API URL (env {BACKEND_URL_ENV}).",
    )(f)


def secret_key_option(f: F) -> F:
    return click.option(
        "-K",
        "--secret-key",
        required=True,
        type=click.Path(dir_okay=False),
        help="Path to your secret key file.",
    )(f)


def password_options(f: F) -> F:
    """``-p/--password`` and ``-P/--password-file``; resolve them with :func:`resolve_password`."""
    f = click.option(
        "-P",
        "--password-file",
        type=click.Path(dir_okay=False),
        help="File containing the password. Conflicts with --password "
        "(env ASFALOAD_<COMMAND>_PASSWORD_FILE).",
    )(f)
    return click.option(
        "-p",
        "--password",
        help="Password for the secret key. Conflicts with --password-file "
        "(env ASFALOAD_<COMMAND>_PASSWORD). Prompted interactively if neither is set.",
    )(f)


# --- passwords ------------------------------------------------------------------------------------
def _read_password_file(path: str, origin: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().rstrip()
    except FileNotFoundError as exc:
        raise PasswordError(f"Password file not found ({origin}): {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise PasswordError(f"Cannot read password file ({origin}): {path}") from exc


def stdin_is_interactive() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def resolve_password(
    password: str | None,
    password_file: str | None,
    *,
    confirm: bool = False,
    command: str | None = None,
) -> str:
    """Find the password from options, environment or (on a terminal) a prompt."""
    if password is not None and password_file is not None:
        raise PasswordError("--password conflicts with --password-file: give only one")
    if password is not None:
        return password
    if password_file is not None:
        return _read_password_file(password_file, "--password-file")
    prefix = command_env_prefix(command)
    env_pw = os.environ.get(f"{prefix}_PASSWORD")
    if env_pw is not None:
        return env_pw
    env_file = os.environ.get(f"{prefix}_PASSWORD_FILE")
    if env_file is not None:
        return _read_password_file(env_file, f"{prefix}_PASSWORD_FILE")
    if not stdin_is_interactive():
        raise PasswordError(
            f"No password given and stdin is not a terminal: use --password, --password-file, "
            f"{prefix}_PASSWORD or {prefix}_PASSWORD_FILE"
        )
    entered: str = click.prompt("Enter password", hide_input=True, err=True, prompt_suffix=": ")
    if confirm:
        again: str = click.prompt("Confirmation", hide_input=True, err=True, prompt_suffix=": ")
        if again != entered:
            raise PasswordError("Password confirmation does not match")
    return entered


def load_secret_key(path: str, password: str | None, password_file: str | None) -> SecretKey:
    """Load ``path``, asking for a password only if the key is encrypted."""
    if not SecretKey.needs_password(path):
        return SecretKey.load(path, None)
    return SecretKey.load(path, resolve_password(password, password_file))


# --- output and errors -------------------------------------------------------------------------------
def dumps_compact(obj: object) -> str:
    """JSON as the manual prints it: no spaces."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def debug_path(path: str | os.PathLike[str]) -> str:
    """A path quoted as upstream's client prints it (Rust ``{:?}``): ``"signers.json"``."""
    return json.dumps(os.fspath(path), ensure_ascii=False)


def one_line(message: str) -> str:
    return _fold_spaces(message) or "error"


def handle_errors(f: F) -> F:
    """Turn an :class:`AsfaloadError` into ``Error: <message>`` on stderr and exit code 1.

    With ``--json`` (a ``json_output`` parameter) the error is ``{"error": "<message>"}`` instead.
    """

    @functools.wraps(f)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except AsfaloadError as exc:
            message = one_line(str(exc))
            if kwargs.get("json_output"):
                click.echo(dumps_compact({"error": message}), err=True)
            else:
                click.echo(f"Error: {message}", err=True)
            sys.exit(1)

    return wrapper  # type: ignore[return-value]
