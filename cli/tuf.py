"""The ``asfaload tuf`` commands.

Offline helpers: ``tuf online-keys`` creates (once) and prints the server's online keys;
``tuf keygen``, ``tuf root new|rotate`` and ``tuf sign`` let root key holders make keys, build
root payloads and sign drafts without another tool (python-tuf and securesystemslib do the work,
in :mod:`asfaload.tuf.build`).

Server helpers (thin wrappers over :class:`asfaload.tuf.client.TufClient`): ``tuf login`` stores
a token; ``tuf bootstrap``, ``tuf rotate``, ``tuf pending``, ``tuf sign-pending``,
``tuf status`` and ``tuf task`` use it. The token comes from ``--token-file`` (env
``ASFALOAD_TUF_TOKEN_FILE``), else ``ASFALOAD_TUF_TOKEN`` (the token itself), else the default
token file ``$XDG_CONFIG_HOME/asfaload/tuf-tokens.json`` (``~/.config/…``), which keeps one
token per backend URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from asfaload.tuf.tokens import TOKEN_ENV, TOKEN_FILE_ENV

from ._common import (
    AliasedOption,
    dumps_compact,
    echo_json,
    handle_errors,
    json_option,
    output_option,
    password_options,
    pem_secret_key_option,
    private_dir,
    resolve_password,
    server_data_dir_option,
    single_backend_url_option,
)

if TYPE_CHECKING:
    from asfaload.tuf.client import TufClient, WriteResult


@click.group("tuf")
def tuf_group() -> None:
    """TUF root metadata helpers.

    \b
    Examples:
      asfaload tuf keygen -o ann.key
      asfaload tuf login --username admin -u https://asfaload.example
      asfaload tuf status --app my-app
    """


@tuf_group.command("online-keys")
@server_data_dir_option
@json_option
@click.option(
    "--rotate",
    is_flag=True,
    help="Make a new set (old keys are kept for roots that still name them).",
)
@handle_errors
def online_keys(data_dir: Path | None, json_output: bool, rotate: bool) -> None:
    """Create (once) and print the server's online keys for timestamp, snapshot and targets.

    \b
    Examples:
      asfaload tuf online-keys --data-dir /srv/asfaload-data
      asfaload tuf online-keys --json > online-keys.json
    """
    from asfaload.tuf.online import OnlineKeyring, keys_json

    ring = OnlineKeyring(private_dir(data_dir))
    keys = keys_json(ring.rotate() if rotate else ring.ensure())
    if json_output:
        click.echo(dumps_compact(keys))
        return
    for role, key in keys.items():
        click.echo(f"{role}: {key['keyid']} ({key['keytype']} {key['keyval']['public']})")


@tuf_group.command("keygen")
@output_option("Private key file to write (PKCS8 PEM, unencrypted, 0600).", required=True)
@json_option
@handle_errors
def keygen(out: Path, json_output: bool) -> None:
    """Make an ed25519 root key; prints its TUF key dict with keyid.

    \b
    Examples:
      asfaload tuf keygen -o ann.key > ann.pub.json
      asfaload tuf keygen -o ben.key --json
    """
    from asfaload.crypto import write_new_file
    from asfaload.tuf._api import CryptoSigner
    from asfaload.tuf.online import key_json

    signer = CryptoSigner.generate_ed25519()
    write_new_file(out, signer.private_bytes.decode("ascii"), mode=0o600)
    echo_json(key_json(signer.public_key), json_output)


@tuf_group.command("sign")
@click.option(
    "-K",
    "--secret-key",
    "key_file",
    cls=AliasedOption,
    hidden_aliases=("--key",),
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help="Private key file from `tuf keygen`.",
)
@click.option(
    "--root",
    "root_file",
    required=True,
    type=click.File("rb"),
    help="Root metadata (or a GET /tuf/v1/metadata/sign answer); '-' for stdin.",
)
@json_option
@handle_errors
def sign(key_file: str, root_file: Any, json_output: bool) -> None:
    """Sign a root draft offline; prints the body for POST /tuf/v1/metadata/sign.

    The output is one JSON object with or without --json (it is what the server takes).

    \b
    Examples:
      asfaload tuf sign -K ben.key --root draft-v2.json > ben.sig.json
      asfaload tuf pending --app my-app --json | asfaload tuf sign -K ben.key --root -
    """
    from asfaload.tuf import build
    from asfaload.tuf.documents import load_json

    doc = load_json(root_file.read(), "root metadata")
    signature = build.sign_document(doc, build.load_signer(key_file))
    click.echo(dumps_compact({"role": "root", "signature": signature}))


# --- options for the commands that talk to the server ---------------------------------------------
def _token_file_option(f: Any) -> Any:
    return click.option(
        "--token-file",
        type=click.Path(dir_okay=False, path_type=Path),
        envvar=TOKEN_FILE_ENV,
        help=f"Token file from `tuf login` (env {TOKEN_FILE_ENV}; default"
        f" ~/.config/asfaload/tuf-tokens.json, after env {TOKEN_ENV}).",
    )(f)


def _app_option(f: Any) -> Any:
    return click.option("--app", required=True, help="Application name (appName).")(f)


def server_options(f: Any) -> Any:
    """-u/--backend-url, --token-file and --json, for every command that talks to the server."""
    return single_backend_url_option(_token_file_option(json_option(f)))


def _client(backend_url: str, token_file: Path | None) -> TufClient:
    from asfaload.tuf.client import TufClient
    from asfaload.tuf.tokens import resolve_token

    return TufClient(backend_url, resolve_token(backend_url, token_file))


def _print_body(body: Any) -> None:
    """A --json answer: one compact object, as every command prints."""
    click.echo(dumps_compact(body))


def _read_root_file(fh: Any, what: str, sign_keys: tuple[str, ...]) -> dict[str, Any]:
    from asfaload.tuf import build
    from asfaload.tuf.documents import load_json, parse_root

    doc = build.unwrap_root(load_json(fh.read(), what))
    if sign_keys:
        return build.add_signatures(doc, [build.load_signer(k) for k in sign_keys])
    return parse_root(doc).doc


def _describe_write(what: str, result: WriteResult) -> str:
    if result.progress is None:
        return f"{what} (task {result.task_id})"
    version = result.version if result.version is not None else result.progress.version
    if result.published:
        return f"Root v{version} published (task {result.task_id})"
    return (
        f"Root v{version} is pending signatures (task {result.task_id})\n"
        f"  {result.progress.summary}"
    )


# --- root payloads ---------------------------------------------------------------------------------
@tuf_group.group("root")
def root_group() -> None:
    """Build root payloads (python-tuf) from key files, thresholds and expiry.

    \b
    Examples:
      asfaload tuf root new --root-key ann.pub.json --online-keys online-keys.json -o root.json
      asfaload tuf root rotate --app my-app --add-key ben.pub.json -K ann.key -o root-v2.json
    """


def _sign_option(f: Any) -> Any:
    return pem_secret_key_option(
        "sign_keys",
        "Private key file to sign the payload with (repeatable).",
        multiple=True,
        alias="--sign",
    )(f)


def _out_option(f: Any) -> Any:
    return output_option("Write the root here instead of stdout (a summary goes to stdout).")(f)


def _expires_option(f: Any) -> Any:
    return click.option(
        "--expires",
        "days",
        type=int,
        default=365,
        show_default=True,
        help="Days until the root expires (1..365).",
    )(f)


def _emit_root(doc: dict[str, Any], out: Path | None, json_output: bool = False) -> None:
    from asfaload.tuf.documents import dump_json, parse_root

    parsed = parse_root(doc)  # never hand out a root our server (or python-tuf) would refuse
    data = dump_json(doc)
    if out is None:
        # The root itself is the one JSON object: in its file form, or one compact line with
        # --json like every command's.
        click.echo(dumps_compact(doc) if json_output else data.decode("utf-8"), nl=json_output)
        return
    out.write_bytes(data)
    root = parsed.root
    if json_output:
        click.echo(
            dumps_compact(
                {
                    "output": str(out),
                    "version": root.version,
                    "root_keys": len(root.roles["root"].keyids),
                    "threshold": root.roles["root"].threshold,
                    "expires": doc["signed"]["expires"],
                    "signatures": len(doc["signatures"]),
                }
            )
        )
        return
    click.echo(
        f"Root v{root.version}: {len(root.roles['root'].keyids)} root key(s), threshold"
        f" {root.roles['root'].threshold}, expires {doc['signed']['expires']},"
        f" {len(doc['signatures'])} signature(s) -> {out}"
    )


@root_group.command("new")
@click.option(
    "--root-key",
    "root_keys",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help="Root key file: `tuf keygen` output (JSON), a PEM public or private key (repeatable).",
)
@click.option(
    "--threshold", type=int, default=1, show_default=True, help="Root signatures required."
)
@click.option(
    "--online-keys",
    "online_file",
    required=True,
    type=click.Path(dir_okay=False, exists=True),
    help="The server's online keys: `asfaload tuf online-keys --json` output, or a root.",
)
@_expires_option
@click.option("--version", type=int, default=1, show_default=True, help="Root version.")
@_sign_option
@_out_option
@json_option
@handle_errors
def root_new(
    root_keys: tuple[str, ...],
    threshold: int,
    online_file: str,
    days: int,
    version: int,
    sign_keys: tuple[str, ...],
    out: Path | None,
    json_output: bool,
) -> None:
    """A new root (for `tuf bootstrap`), signed by the -K keys if given.

    \b
    Examples:
      asfaload tuf root new --root-key ann.pub.json --root-key ben.pub.json --threshold 2 \\
          --online-keys online-keys.json -K ann.key -K ben.key -o root-v1.json
      asfaload tuf root new --root-key ann.pub.json --online-keys online-keys.json --json
    """
    import time

    from asfaload.tuf import build

    root = build.new_root(
        [build.load_public_key(k) for k in root_keys],
        threshold,
        build.load_online_keys(online_file),
        days=days,
        now=int(time.time()),
        version=version,
    )
    _emit_root(
        build.root_document(root, [build.load_signer(k) for k in sign_keys]), out, json_output
    )


def _keyid_or_file(value: str) -> str:
    import re

    from asfaload.tuf import build

    if re.fullmatch(r"[0-9a-f]{64}", value) and not Path(value).exists():
        return value
    return build.load_public_key(value).keyid


@root_group.command("rotate")
@click.option(
    "--from",
    "from_file",
    type=click.File("rb"),
    help="The trusted root to succeed (a root, or a saved GET /tuf/v1/metadata/root answer).",
)
@click.option("--app", help="Fetch the trusted root of this app from the server instead.")
@click.option(
    "--add-key",
    "add_keys",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True),
    help="Root key file to add (repeatable).",
)
@click.option(
    "--remove-key",
    "remove_keys",
    multiple=True,
    help="Root key to remove: its keyid or a key file (repeatable).",
)
@click.option("--threshold", type=int, help="New root threshold (default: unchanged).")
@click.option(
    "--online-keys",
    "online_file",
    type=click.Path(dir_okay=False, exists=True),
    help="Replace the online roles' keys (`tuf online-keys --json` output).",
)
@_expires_option
@_sign_option
@_out_option
@single_backend_url_option
@_token_file_option
@json_option
@handle_errors
def root_rotate(
    from_file: Any,
    app: str | None,
    add_keys: tuple[str, ...],
    remove_keys: tuple[str, ...],
    threshold: int | None,
    online_file: str | None,
    days: int,
    sign_keys: tuple[str, ...],
    out: Path | None,
    backend_url: str,
    token_file: Path | None,
    json_output: bool,
) -> None:
    """The next root version: keys added/removed, threshold, expiry; signed by -K keys.

    For publication it needs the signatures of the trusted root's threshold AND of its own
    (TUF spec 5.3.4): sign here with every key at hand, or post it unsigned with `tuf rotate`
    and collect signatures with `tuf sign-pending`.

    \b
    Examples:
      asfaload tuf root rotate --from root-v1.json --add-key cat.pub.json -K ann.key -o root-v2.json
      asfaload tuf root rotate --app my-app --remove-key ben.pub.json --threshold 1 -o root-v2.json
    """
    import time

    from asfaload.errors import FormatError
    from asfaload.tuf import build
    from asfaload.tuf.documents import load_json, parse_root

    if (from_file is None) == (app is None):
        raise FormatError("give exactly one of --from FILE and --app APP")
    if from_file is not None:
        trusted_doc = build.unwrap_root(load_json(from_file.read(), "trusted root"))
    else:
        assert app is not None
        trusted_doc = _client(backend_url, token_file).trusted_root(app)
        if trusted_doc is None:
            raise FormatError(f"app {app} has no valid trusted root on {backend_url}")
    trusted = parse_root(trusted_doc).root
    root = build.next_root(
        trusted,
        add=[build.load_public_key(k) for k in add_keys],
        remove=[_keyid_or_file(k) for k in remove_keys],
        threshold=threshold,
        online=build.load_online_keys(online_file) if online_file else None,
        days=days,
        now=int(time.time()),
    )
    _emit_root(
        build.root_document(root, [build.load_signer(k) for k in sign_keys]), out, json_output
    )


# --- commands that talk to the server ------------------------------------------------------------
@tuf_group.command("login")
@click.option("--username", required=True, envvar="ASFALOAD_TUF_USERNAME", help="Admin user name.")
@password_options
@click.option(
    "--print-token",
    is_flag=True,
    help=f"Print the token (for {TOKEN_ENV}) instead of storing it.",
)
@server_options
@handle_errors
def login(
    username: str,
    password: str | None,
    password_file: str | None,
    password_command: str | None,
    print_token: bool,
    backend_url: str,
    token_file: Path | None,
    json_output: bool,
) -> None:
    """Log in with POST /login and keep the token (valid 24 h) for the other tuf commands.

    Password: -p, -P, --password-command, env ASFALOAD_TUF_LOGIN_PASSWORD[_FILE], else a prompt
    on a terminal (ASFALOAD_PASSWORD_COMMAND is for key passwords, not this one).

    \b
    Examples:
      asfaload tuf login --username admin -u https://asfaload.example
      asfaload tuf login --username admin --password-command 'pass show asfaload-tuf'
    """
    from asfaload.tuf.client import TufClient

    secret = resolve_password(
        password,
        password_file,
        password_command=password_command,
        command="tuf-login",
        key_password=False,
        prompt=f"Password for {username} at {backend_url}",
    )
    token = TufClient(backend_url).login(username, secret)
    if print_token:
        click.echo(dumps_compact({"token": token}) if json_output else token)
        return
    from asfaload.tuf.tokens import default_token_file, store_token

    path = token_file or default_token_file()
    store_token(path, backend_url, username, token)
    if json_output:
        _print_body({"username": username, "backend_url": backend_url, "token_file": str(path)})
        return
    click.echo(f"Logged in to {backend_url} as {username}; token stored in {path}")


@tuf_group.command("bootstrap")
@_app_option
@click.option(
    "--root",
    "root_file",
    type=click.File("rb"),
    help="Root v1 (`tuf root new` output), self-signed to its threshold; '-' for stdin.",
)
@_sign_option
@click.option("--root-expiration", type=int, default=365, show_default=True, help="Days.")
@click.option("--targets-expiration", type=int, default=90, show_default=True, help="Days.")
@click.option("--snapshot-expiration", type=int, default=7, show_default=True, help="Days.")
@click.option("--timestamp-expiration", type=int, default=1, show_default=True, help="Days.")
@click.option("--status", is_flag=True, help="Only show whether the app is bootstrapped.")
@server_options
@handle_errors
def bootstrap(
    app: str,
    root_file: Any,
    sign_keys: tuple[str, ...],
    root_expiration: int,
    targets_expiration: int,
    snapshot_expiration: int,
    timestamp_expiration: int,
    status: bool,
    backend_url: str,
    token_file: Path | None,
    json_output: bool,
) -> None:
    """Bootstrap an app's TUF repository (POST /tuf/v1/bootstrap): root v1 and online roles.

    \b
    Examples:
      asfaload tuf bootstrap --app my-app --root root-v1.json
      asfaload tuf bootstrap --app my-app --status --json
    """
    from asfaload.errors import FormatError
    from asfaload.tuf.documents import Expirations

    client = _client(backend_url, token_file)
    if status:
        st = client.bootstrap_status(app)
        if json_output:
            _print_body(st.body)
        else:
            click.echo(st.message + (f" (task {st.task_id})" if st.task_id else ""))
        return
    if root_file is None:
        raise FormatError("--root is required (or --status)")
    expirations = Expirations(
        root=root_expiration,
        targets=targets_expiration,
        snapshot=snapshot_expiration,
        timestamp=timestamp_expiration,
    )
    doc = _read_root_file(root_file, "root metadata", sign_keys)
    result = client.bootstrap(app, doc, expirations)
    if json_output:
        _print_body(result.body)
        return
    click.echo(f"Bootstrapped {app}: root v{doc['signed']['version']} (task {result.task_id})")
    from asfaload.tuf.tokens import token_username

    admin = token_username(client.token or "")
    if admin:
        from asfaload.layout import tuf_dir

        click.echo(f"Metadata: {backend_url.rstrip('/')}/v1/files/{tuf_dir(admin, app)}/")


@tuf_group.command("rotate")
@_app_option
@click.option(
    "--root",
    "root_file",
    required=True,
    type=click.File("rb"),
    help="The new root (`tuf root rotate` output), signed or not; '-' for stdin.",
)
@_sign_option
@server_options
@handle_errors
def rotate(
    app: str,
    root_file: Any,
    sign_keys: tuple[str, ...],
    backend_url: str,
    token_file: Path | None,
    json_output: bool,
) -> None:
    """Propose a new root (POST /tuf/v1/metadata): published when fully signed, else a draft.

    \b
    Examples:
      asfaload tuf rotate --app my-app --root root-v2.json
      asfaload tuf rotate --app my-app --root root-v2.json -K ann.key --json
    """
    doc = _read_root_file(root_file, "root metadata", sign_keys)
    result = _client(backend_url, token_file).rotate(app, doc)
    if json_output:
        _print_body(result.body)
        return
    click.echo(_describe_write(result.message, result))


@tuf_group.command("pending")
@_app_option
@output_option("Save the draft root here (to sign it offline with `tuf sign`).")
@server_options
@handle_errors
def pending(
    app: str, out: Path | None, backend_url: str, token_file: Path | None, json_output: bool
) -> None:
    """Show the root draft waiting for signatures (GET /tuf/v1/metadata/sign).

    \b
    Examples:
      asfaload tuf pending --app my-app
      asfaload tuf pending --app my-app -o draft-v2.json --json
    """
    from asfaload.tuf.documents import dump_json

    found = _client(backend_url, token_file).pending(app)
    if found is not None and out is not None:
        out.write_bytes(dump_json(found.root))
    if json_output:
        _print_body(
            found.body
            if found
            else {"data": None, "message": "No metadata pending signing available"}
        )
        return
    if found is None:
        click.echo("No metadata pending signing available")
        return
    trusted = found.trusted_root
    trusted_v = trusted.get("signed", {}).get("version") if trusted else None
    click.echo(
        f"Root v{found.version} pending signatures"
        + (f" (trusted root v{trusted_v})" if trusted_v is not None else "")
    )
    p = found.progress
    if p is not None:
        for label, side in (("trusted root", p.old), ("new root", p.new)):
            click.echo(
                f"  {label}: {len(side.signed)}/{side.threshold} signed"
                + (f", {side.remaining} more required" if side.remaining else "")
            )
            for keyid in side.signed:
                click.echo(f"    signed:  {keyid}")
            for keyid in side.missing:
                click.echo(f"    missing: {keyid}")
    else:
        for sig in found.root.get("signatures", []):
            click.echo(f"  signed: {sig.get('keyid')}")
    if out is not None:
        click.echo(f"Draft saved to {out}")


@tuf_group.command("sign-pending")
@_app_option
@pem_secret_key_option(
    "key_file", "Private root key file: fetch the draft, sign it here, post the signature."
)
@click.option(
    "--signature",
    "signature_file",
    type=click.File("rb"),
    help="Post a signature made offline (`tuf sign` output); '-' for stdin.",
)
@server_options
@handle_errors
def sign_pending(
    app: str,
    key_file: str | None,
    signature_file: Any,
    backend_url: str,
    token_file: Path | None,
    json_output: bool,
) -> None:
    """Add one signature to the root draft (POST /tuf/v1/metadata/sign).

    \b
    Examples:
      asfaload tuf sign-pending --app my-app -K ann.key
      asfaload tuf sign-pending --app my-app --signature ben.sig.json --json
    """
    from asfaload.errors import FormatError, NotAuthorizedError, NotFoundError
    from asfaload.tuf import build
    from asfaload.tuf.documents import load_json, parse_root

    if (key_file is None) == (signature_file is None):
        raise FormatError("give exactly one of -K/--secret-key and --signature")
    client = _client(backend_url, token_file)
    if key_file is not None:
        found = client.pending(app)
        if found is None:
            raise NotFoundError(f"No metadata pending signing available for {app}")
        signer = build.load_signer(key_file)
        keyid = signer.public_key.keyid
        draft = parse_root(found.root).root
        allowed = set(draft.roles["root"].keyids)
        if found.trusted_root is not None:
            allowed |= set(parse_root(found.trusted_root).root.roles["root"].keyids)
        if keyid not in allowed:
            raise NotAuthorizedError(
                f"key {keyid} is not a root key of the draft (v{draft.version})"
                " or of the trusted root"
            )
        signature = build.sign_document(found.root, signer)
    else:
        body = load_json(signature_file.read(), "signature")
        sig = body.get("signature") if isinstance(body, dict) and "signature" in body else body
        if (
            not isinstance(sig, dict)
            or not isinstance(sig.get("keyid"), str)
            or not isinstance(sig.get("sig"), str)
        ):
            raise FormatError("the signature file must hold {keyid, sig} (`tuf sign` output)")
        signature = {"keyid": sig["keyid"], "sig": sig["sig"]}
    result = client.sign(app, signature)
    if json_output:
        _print_body(result.body)
        return
    click.echo(f"Signature from {signature['keyid']} accepted")
    click.echo(_describe_write(result.message, result))


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


@tuf_group.command("status")
@_app_option
@server_options
@handle_errors
def status(app: str, backend_url: str, token_file: Path | None, json_output: bool) -> None:
    """Show when the app's metadata expires and when the server re-signs it
    (GET /tuf/v1/metadata/expiry).

    One line per role: its version, its expiry, and when the server re-signs it (targets,
    snapshot and timestamp, once less than the server's margin is left) or, for the root,
    that its key holders must publish a new one before then. EXPIRED marks metadata that
    clients refuse now.

    \b
    Examples:
      asfaload tuf status --app my-app
      asfaload tuf status --app my-app -u https://tuf.example.org --json
    """
    found = _client(backend_url, token_file).expiry(app)
    if json_output:
        _print_body(found.body)
        return
    if found.refresh_enabled:
        click.echo(
            f"{app}: the server re-signs online metadata {_duration(found.refresh_margin)}"
            " before it expires (or at half its lifetime if sooner), looking at least every"
            f" {_duration(found.refresh_interval)}"
        )
    else:
        click.echo(f"{app}: this server does not re-sign online metadata")
    for r in found.roles:
        if r.refresh_at is not None:
            when = f"re-signed at {r.refresh_at}"
        elif r.online:
            when = "not re-signed by this server"
        else:
            when = "offline: publish a new root before then"
        click.echo(
            f"  {r.role:<9} v{r.version:<4} expires {r.expires}"
            + ("  EXPIRED" if r.expired else "")
            + f"  {when}"
        )


@tuf_group.command("task")
@click.argument("task_id")
@server_options
@handle_errors
def task(task_id: str, backend_url: str, token_file: Path | None, json_output: bool) -> None:
    """Show a task's state (GET /tuf/v1/task).

    \b
    Examples:
      asfaload tuf task 5f0c…
      asfaload tuf task TASK_ID --json
    """
    found = _client(backend_url, token_file).task(task_id)
    if json_output:
        _print_body(found.body)
        return
    click.echo(f"Task {found.task_id}: {found.state}" + (f" - {found.text}" if found.text else ""))


def register(group: click.Group) -> None:
    group.add_command(tuf_group)
