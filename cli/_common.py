"""Options and behaviour shared by every command: passwords, secret keys, --json, errors.

Password sources, first match wins (as upstream's client, plus a password command):
  1. ``-p/--password``, ``-P/--password-file`` (trailing whitespace trimmed) or
     ``--password-command CMD`` (the first line of CMD's output): options, at most one of them
  2. ``ASFALOAD_<CMD>_PASSWORD``  3. ``ASFALOAD_<CMD>_PASSWORD_FILE``
  4. ``ASFALOAD_PASSWORD_COMMAND``, for the password of a secret key only (it names the key
     password a password manager keeps: an account password, as ``tuf login`` asks, is not it)
  5. an interactive prompt, only when stdin is a terminal; otherwise a clear error (never a hang).
``<CMD>`` is the command name upper-cased with ``-`` → ``_`` (``new-keys`` → ``NEW_KEYS``).
The more specific source wins: an option over the environment, a per-command variable over the
variable every command shares.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from asfaload.crypto import PublicKey, SecretKey, digest_string
from asfaload.crypto.randomart import randomart
from asfaload.errors import AsfaloadError, PasswordError, RuleViolation
from asfaload.errors import one_line as _fold_spaces
from asfaload.layout import DEFAULT_BACKEND_URL, DEFAULT_DATA_DIR

F = TypeVar("F", bound=Callable[..., Any])

BACKEND_URL_ENV = "ASFALOAD_BACKEND_URL"
DATA_DIR_ENV = "ASFALOAD_DATA_DIR"
PASSWORD_COMMAND_ENV = "ASFALOAD_PASSWORD_COMMAND"


def command_env_prefix(command: str | None = None) -> str:
    """``ASFALOAD_NEW_KEYS`` for ``new-keys`` (the current command when not given)."""
    if command is None:
        command = click.get_current_context().info_name or ""
    return "ASFALOAD_" + command.upper().replace("-", "_")


# --- options ------------------------------------------------------------------------------------
class AliasedOption(click.Option):
    """An option with old spellings that still work but are left out of ``--help``.

    ``tuf`` once spelt the output path ``--out`` and the secret key ``--key``/``--sign``; scripts
    written then keep working, while the help shows only the names every command shares."""

    def __init__(
        self, param_decls: list[str], *, hidden_aliases: tuple[str, ...] = (), **attrs: Any
    ) -> None:
        super().__init__([*param_decls, *hidden_aliases], **attrs)
        self.hidden_aliases = frozenset(hidden_aliases)

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        shown, self.opts = self.opts, [o for o in self.opts if o not in self.hidden_aliases]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts = shown


def json_option(f: F) -> F:
    return click.option(
        "--json",
        "json_output",
        is_flag=True,
        help="Emit one JSON object on stdout instead of the human lines (errors: one "
        '{"error": ...} object on stderr).',
    )(f)


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)


def data_dir_option(
    help: str = "Server data directory (mirror.git + private/).", exists: bool = False
) -> Callable[[F], F]:
    """``--data-dir``, the same everywhere: env ``ASFALOAD_DATA_DIR``, else ./asfaload-data."""

    def deco(f: F) -> F:
        return click.option(
            "--data-dir",
            type=click.Path(file_okay=False, exists=exists, path_type=Path),
            default=None,
            help=f"{help} Env {DATA_DIR_ENV}; default ./{DEFAULT_DATA_DIR}.",
        )(f)

    return deco


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


def _backend_option(callback: Callable[..., Any], help: str) -> Callable[[F], F]:
    return click.option(
        "-u",
        "--backend-url",
        multiple=True,
        default=(DEFAULT_BACKEND_URL,),
        show_default=True,
        envvar=BACKEND_URL_ENV,
        callback=callback,
        help=help,
    )


def backend_url_option(f: F) -> F:
    """``-u/--backend-url``, repeatable; the command gets a tuple of URLs in failover order."""
    return _backend_option(
        _backend_urls,
        f"Backend API URL; repeat it (or give a comma list in {BACKEND_URL_ENV}) for "
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

    return _backend_option(one, f"Backend API URL (env {BACKEND_URL_ENV}).")(f)


def secret_key_option(f: F) -> F:
    return click.option(
        "-K",
        "--secret-key",
        required=True,
        type=click.Path(dir_okay=False),
        help="Path to your secret key file: minisign, asfaload ed25519, or an OpenSSH "
        "ssh-ed25519 private key such as ~/.ssh/id_ed25519 (its passphrase, if any, comes "
        "through the password options).",
    )(f)


def password_options(f: F) -> F:
    """``-p/--password``, ``-P/--password-file`` and ``--password-command``; resolve them with
    :func:`resolve_password`."""
    f = click.option(
        "--password-command",
        metavar="CMD",
        help="Shell command printing the password on its first line of output, run with no "
        "stdin (a password manager: 'pass show asfaload'). Conflicts with --password and "
        f"--password-file (env {PASSWORD_COMMAND_ENV}, after the per-command variables).",
    )(f)
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


def fingerprint_option(f: F) -> F:
    return click.option(
        "--show-fingerprint",
        is_flag=True,
        help="Draw each digest as a randomart picture (OpenSSH's drunken bishop) on stderr even "
        "when stderr is not a terminal; on a terminal it is always drawn.",
    )(f)


# --- visual fingerprints ----------------------------------------------------------------------------
FINGERPRINT_TITLE = "asfaload"


def fingerprint_text(path: str, digest: bytes) -> str:
    """What a signer sees for one file: its path, its digest string and the digest's randomart,
    the same picture ``get-digest`` draws for a local copy of the file."""
    return f"{path}\n{digest_string(digest)}\n{randomart(digest, FINGERPRINT_TITLE)}"


def stderr_is_terminal() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def fingerprint_writer(always: bool) -> Callable[[str, bytes], None] | None:
    """A callback drawing each (path, digest) on stderr, or None when nothing is drawn: only a
    person at a terminal looks at the picture, unless ``--show-fingerprint`` asks for it. Each
    (path, digest) is drawn once, even when a git push is retried."""
    if not (always or stderr_is_terminal()):
        return None
    shown: set[tuple[str, bytes]] = set()

    def write(path: str, digest: bytes) -> None:
        if (path, digest) not in shown:
            shown.add((path, digest))
            click.echo(fingerprint_text(path, digest), err=True)

    return write


# --- passwords ------------------------------------------------------------------------------------
def _read_password_file(path: str, origin: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().rstrip()
    except FileNotFoundError as exc:
        raise PasswordError(f"Password file not found ({origin}): {path}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise PasswordError(f"Cannot read password file ({origin}): {path}") from exc


def _run_password_command(cmd: str, origin: str) -> str:
    """The first line of ``cmd``'s standard output, run by the shell with no stdin.

    The command's stderr is kept (its first line explains a failure); its stdout never appears
    in a message, since it holds the password."""
    try:
        proc = subprocess.run(
            cmd,
            shell=True,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
        )
    except OSError as exc:
        raise PasswordError(f"Cannot run the password command ({origin}): {exc.strerror}") from exc
    if proc.returncode != 0:
        said = next(
            (
                ln.strip()
                for ln in proc.stderr.decode("utf-8", "replace").splitlines()
                if ln.strip()
            ),
            "",
        )
        detail = f": {said[:200]}" if said else ""
        raise PasswordError(
            f"The password command ({origin}) failed with exit code {proc.returncode}{detail}"
        )
    try:
        out = proc.stdout.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PasswordError(f"The password command ({origin}) printed non-UTF-8 output") from exc
    # Only the line ending goes: a passphrase may end with a space. Later lines are ignored,
    # as pass(1) keeps notes there.
    first = out.split("\n", 1)[0].removesuffix("\r")
    if not first:
        raise PasswordError(f"The password command ({origin}) printed no password")
    return first


def stdin_is_interactive() -> bool:
    try:
        return sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def resolve_password(
    password: str | None,
    password_file: str | None,
    *,
    password_command: str | None = None,
    confirm: bool = False,
    command: str | None = None,
    key_password: bool = True,
    prompt: str = "Enter password",
) -> str:
    """Find the password from options, environment or (on a terminal) a prompt, in the order
    of the module docstring. ``key_password`` is False for an account password, which
    ``ASFALOAD_PASSWORD_COMMAND`` does not give. ``prompt`` names what the password opens
    (``Password for ~/.asfaload/alice``): a person with several keys must know which one."""
    given = [
        name
        for name, value in (
            ("--password", password),
            ("--password-file", password_file),
            ("--password-command", password_command),
        )
        if value is not None
    ]
    if len(given) > 1:
        raise PasswordError(f"{given[0]} conflicts with {' and '.join(given[1:])}: give only one")
    if password is not None:
        return password
    if password_file is not None:
        return _read_password_file(password_file, "--password-file")
    if password_command is not None:
        return _run_password_command(password_command, "--password-command")
    prefix = command_env_prefix(command)
    env_pw = os.environ.get(f"{prefix}_PASSWORD")
    if env_pw is not None:
        return env_pw
    env_file = os.environ.get(f"{prefix}_PASSWORD_FILE")
    if env_file is not None:
        return _read_password_file(env_file, f"{prefix}_PASSWORD_FILE")
    env_cmd = os.environ.get(PASSWORD_COMMAND_ENV) if key_password else None
    if env_cmd:
        return _run_password_command(env_cmd, PASSWORD_COMMAND_ENV)
    if not stdin_is_interactive():
        also = f", {PASSWORD_COMMAND_ENV}" if key_password else ""
        raise PasswordError(
            f"No password given and stdin is not a terminal: use --password, --password-file, "
            f"--password-command, {prefix}_PASSWORD or {prefix}_PASSWORD_FILE{also}"
        )
    entered: str = click.prompt(prompt, hide_input=True, err=True, prompt_suffix=": ")
    if confirm:
        again: str = click.prompt("Confirmation", hide_input=True, err=True, prompt_suffix=": ")
        if again != entered:
            raise PasswordError("Password confirmation does not match")
    return entered


def load_secret_key(
    path: str,
    password: str | None,
    password_file: str | None,
    password_command: str | None = None,
) -> SecretKey:
    """Load ``path`` (minisign, asfaload ed25519 or OpenSSH ed25519), asking for a password
    only if the key is encrypted: no password command runs for a key that needs none."""
    if not SecretKey.needs_password(path):
        return SecretKey.load(path, None)
    return SecretKey.load(
        path,
        resolve_password(
            password,
            password_file,
            password_command=password_command,
            prompt=f"Password for {tilde(path)}",
        ),
    )


def tilde(path: str | os.PathLike[str]) -> str:
    """``path`` as a person types it: under the home directory it starts with ``~``."""
    text = os.fspath(path)
    home = os.path.expanduser("~")
    if home not in ("", "/") and (text == home or text.startswith(home + os.sep)):
        return "~" + text[len(home) :]
    return text


def key_label(key: PublicKey) -> str:
    """How a key is shown to people everywhere: its minisign-style key id, then the key."""
    return f"{key.key_id} {key}"


def note(text: str) -> None:
    """A line for the person at the terminal, on stderr: details (key ids) beside outputs whose
    stdout the manual fixes line for line, so scripts parsing stdout see no change."""
    click.echo(text, err=True)


def confirm_or_abort(question: str, yes: bool) -> None:
    """Ask ``question`` when stdin is a terminal and ``--yes`` was not given; a refusal is a
    one-line error. Without a terminal nothing is asked (scripts run as before)."""
    if yes or not stdin_is_interactive():
        return
    if not click.confirm(question, default=False, err=True):
        raise CancelledError("Cancelled: nothing was changed")


class CancelledError(RuleViolation):
    """The person at the terminal said no."""


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


# --- shared by the admin and tuf commands ----------------------------------------------------------
server_data_dir_option = data_dir_option("Server data directory (holds private/).")


def private_dir(data_dir: Path | None) -> Path:
    from asfaload.layout import PRIVATE_DIR

    base = default_data_dir() if data_dir is None else Path(data_dir)
    if not base.exists():
        # As `asfaload serve` does on first start: the keys and accounts may come first.
        from asfaload.errors import StoreError

        try:
            base.mkdir(parents=True)
        except OSError as exc:
            raise StoreError(f"Cannot create {base}: {exc.strerror}") from None
    return base / PRIVATE_DIR


def output_option(help: str, required: bool = False) -> Callable[[F], F]:
    """``-o/--output``, as everywhere; ``--out`` was its name in ``tuf`` and still works."""
    return click.option(
        "-o",
        "--output",
        "out",
        cls=AliasedOption,
        hidden_aliases=("--out",),
        required=required,
        type=click.Path(dir_okay=False, path_type=Path),
        help=help,
    )


def pem_secret_key_option(
    dest: str, help: str, multiple: bool = False, alias: str = "--key"
) -> Callable[[F], F]:
    """``-K/--secret-key``, as everywhere (here a TUF private key file, PEM); ``tuf`` called it
    ``--key`` (or ``--sign`` for keys that sign a payload), which still works."""
    return click.option(
        "-K",
        "--secret-key",
        dest,
        cls=AliasedOption,
        hidden_aliases=(alias,),
        multiple=multiple,
        type=click.Path(dir_okay=False, exists=True),
        help=help,
    )


def echo_json(obj: Any, json_output: bool) -> None:
    """One JSON object: compact with --json (a script reads it), indented for people."""
    click.echo(dumps_compact(obj) if json_output else json.dumps(obj, indent=2))
