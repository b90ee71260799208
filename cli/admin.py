"""``asfaload admin add-user`` and the ``asfaload tuf`` helpers that need no server.

``tuf online-keys`` creates (once) and prints the server's online keys; ``tuf keygen`` and
``tuf sign`` let an offline root key holder make a key and sign a root draft without another
tool (python-tuf and securesystemslib do the work).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from ._common import handle_errors, resolve_password

DATA_DIR_HELP = "Server data directory (holds private/)."


def _private(data_dir: Path) -> Path:
    return Path(data_dir) / "private"


@click.group("admin")
def admin_group() -> None:
    """Server administration (TUF admin users)."""


@admin_group.command("add-user")
@click.option(
    "--data-dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help=DATA_DIR_HELP,
)
@click.option("--username", required=True, help="Login name (the TUF admin name in paths).")
@click.option(
    "--password-file",
    type=click.Path(dir_okay=False),
    help="File holding the password (env ASFALOAD_ADD_USER_PASSWORD[_FILE]; else a prompt).",
)
@click.option(
    "--team-user",
    is_flag=True,
    help="A user that can log in but is not an admin (TUF routes answer 403).",
)
@handle_errors
def add_user(data_dir: Path, username: str, password_file: str | None, team_user: bool) -> None:
    """Add a user who can log in with POST /login (password stored as an Argon2id hash)."""
    from asfaload.tuf.accounts import Accounts

    password = resolve_password(None, password_file, confirm=True, command="add-user")
    user = Accounts(_private(data_dir)).add_user(
        username, password, role="team" if team_user else "admin"
    )
    click.echo(f"Added {user.role} user {user.username}")


@click.group("tuf")
def tuf_group() -> None:
    """TUF root metadata helpers."""


@tuf_group.command("online-keys")
@click.option(
    "--data-dir",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help=DATA_DIR_HELP,
)
@click.option("--json", "json_output", is_flag=True, help="Print JSON only.")
@click.option(
    "--rotate",
    is_flag=True,
    help="Make a new set (old keys are kept for roots that still name them).",
)
@handle_errors
def online_keys(data_dir: Path, json_output: bool, rotate: bool) -> None:
    """Create (once) and print the server's online keys for timestamp, snapshot and targets."""
    from asfaload.tuf.online import OnlineKeyring, keys_json

    ring = OnlineKeyring(_private(data_dir))
    keys = keys_json(ring.rotate() if rotate else ring.ensure())
    if json_output:
        click.echo(json.dumps(keys, indent=2))
        return
    for role, key in keys.items():
        click.echo(f"{role}: {key['keyid']} ({key['keytype']} {key['keyval']['public']})")


@tuf_group.command("keygen")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Private key file to write (PKCS8 PEM, unencrypted, 0600).",
)
@handle_errors
def keygen(out: Path) -> None:
    """Make an ed25519 root key; prints its TUF key dict with keyid."""
    import os

    from asfaload.errors import RefusingToOverwriteError
    from asfaload.tuf._api import CryptoSigner
    from asfaload.tuf.online import key_json

    signer = CryptoSigner.generate_ed25519()
    try:
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise RefusingToOverwriteError(f"{out} already exists") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(signer.private_bytes)
    click.echo(json.dumps(key_json(signer.public_key), indent=2))


@tuf_group.command("sign")
@click.option(
    "--key",
    "key_file",
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
@handle_errors
def sign(key_file: str, root_file: Any) -> None:
    """Sign a root draft offline; prints the body for POST /tuf/v1/metadata/sign."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from asfaload.tuf._api import CryptoSigner, SSlibKey
    from asfaload.tuf.documents import load_json, parse_root

    doc = load_json(root_file.read(), "root metadata")
    if isinstance(doc, dict) and isinstance(doc.get("data"), dict):
        doc = doc["data"]["metadata"]["root"]
    parsed = parse_root(doc)
    with open(key_file, "rb") as fh:
        private = load_pem_private_key(fh.read(), password=None)
    signer = CryptoSigner(private, SSlibKey.from_crypto(private.public_key()))
    sig = signer.sign(parsed.md.signed_bytes)
    json.dump({"role": "root", "signature": sig.to_dict()}, sys.stdout)
    click.echo()


def register(group: click.Group) -> None:
    for cmd in (admin_group, tuf_group):
        existing = group.commands.get(cmd.name or "")
        if isinstance(existing, click.Group) and isinstance(cmd, click.Group):
            for sub in cmd.commands.values():
                existing.add_command(sub)
        else:
            group.add_command(cmd)
