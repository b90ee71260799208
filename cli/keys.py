"""Local key commands: ``new-keys``, ``sign-file``, ``verify-sig`` and ``get-digest``."""

from __future__ import annotations

import os
from pathlib import Path

import click

from asfaload.crypto import (
    ED25519,
    MINISIGN,
    PublicKey,
    SignatureFile,
    check_algorithm,
    check_password_strength,
    digest_string,
    generate_keypair_files,
    keypair_paths,
    read_signature_file,
    sha512_file,
    signature_file_text,
    verify_file,
    write_new_file,
)
from asfaload.crypto.randomart import randomart
from asfaload.errors import (
    FormatError,
    PasswordError,
    RefusingToOverwriteError,
    SignatureVerificationError,
    VerificationError,
)
from asfaload.model.signers import SignersFile

from ._common import (
    FINGERPRINT_TITLE,
    debug_path,
    dumps_compact,
    fingerprint_option,
    fingerprint_writer,
    handle_errors,
    json_option,
    key_label,
    load_secret_key,
    note,
    password_options,
    resolve_password,
    secret_key_option,
    tilde,
)

_DISPLAY = {MINISIGN: "Minisign", ED25519: "Ed25519"}
_SIG_SUFFIX = {MINISIGN: ".minisig", ED25519: ".sig.json"}
_COVERS = {
    "sha512-digest": "over the SHA-512 digest of the file",
    "file-content": "over the file content (minisign)",
}


@click.command("new-keys")
@click.option("-n", "--name", required=True, help="Base name for the key files.")
@click.option(
    "-o",
    "--output-dir",
    required=True,
    help="Directory to write the key files into. Created automatically if it doesn't exist.",
)
@click.option(
    "-a",
    "--algorithm",
    default=MINISIGN,
    show_default=True,
    help="Signing algorithm: minisign or ed25519.",
)
@password_options
@click.option(
    "--accept-weak-password",
    is_flag=True,
    help="Bypass password strength validation. Insecure — only use for testing.",
)
@json_option
@handle_errors
def new_keys(
    name: str,
    output_dir: str,
    algorithm: str,
    password: str | None,
    password_file: str | None,
    password_command: str | None,
    accept_weak_password: bool,
    json_output: bool,
) -> None:
    """Generate a new signing key pair: <NAME> (secret key) and <NAME>.pub.

    \b
    Examples:
      asfaload new-keys -n alice -o ~/.asfaload
      asfaload new-keys -n alice -o ~/.asfaload -a ed25519 --password-command 'pass show asfaload'
    """
    algorithm = check_algorithm(algorithm.lower())
    pub_path, sec_path = keypair_paths(name, output_dir)
    shown_sec = os.path.join(output_dir, name)
    shown_pub = shown_sec + ".pub"
    # Fail before asking for a password if we could not write anyway.
    for p, shown in ((sec_path, shown_sec), (pub_path, shown_pub)):
        if p.exists() or p.is_symlink():
            raise RefusingToOverwriteError(f"Refusing to overwrite existing file {shown}")
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise FormatError(f"Output directory is not a directory: {output_dir}")
    pw = resolve_password(
        password,
        password_file,
        password_command=password_command,
        confirm=True,
        prompt=f"Password for the new key {tilde(shown_sec)}",
    )
    if not pw:
        raise PasswordError("The password must not be empty")
    if not accept_weak_password:
        check_password_strength(pw)
    if not json_output:
        click.echo(
            f"Generating {_DISPLAY[algorithm]} keypair with name '{name}' "
            f"in directory {debug_path(output_dir)}"
        )
    pub_file, _ = generate_keypair_files(name, output_dir, algorithm, pw)
    if json_output:
        # The manual's object, key for key: scripts compare it whole.
        click.echo(dumps_compact({"public_key_path": shown_pub, "secret_key_path": shown_sec}))
    else:
        click.echo(f"Public key saved at {shown_pub} and secret key at {shown_sec}")
        note(f"Key ID: {key_label(PublicKey.from_file(pub_file))}")


@click.command("sign-file")
@click.argument("file", type=click.Path(dir_okay=False))
@secret_key_option
@click.option(
    "-o",
    "--output-file",
    type=click.Path(dir_okay=False),
    help="Where to write the signature (default FILE.minisig, or FILE.sig.json for ed25519).",
)
@password_options
@json_option
@handle_errors
def sign_file(
    file: str,
    secret_key: str,
    output_file: str | None,
    password: str | None,
    password_file: str | None,
    password_command: str | None,
    json_output: bool,
) -> None:
    """Sign the SHA-512 digest of a local FILE and write the signature file.

    minisign keys write the minisign signature box (`minisign -V -m <digest file>` accepts it);
    ed25519 keys (OpenSSH ssh-ed25519 keys included) write a small JSON document with the key
    and the signature.

    \b
    Examples:
      asfaload sign-file release.tar.gz -K ~/.asfaload/alice
      asfaload sign-file release.tar.gz -K ~/.ssh/id_ed25519 -o release.tar.gz.sig.json
      asfaload sign-file release.tar.gz -K KEY --password-command 'pass show asfaload'
    """
    digest = sha512_file(file)
    key = load_secret_key(secret_key, password, password_file, password_command)
    out = Path(output_file) if output_file else Path(file + _SIG_SUFFIX[key.algorithm])
    if out.exists() or out.is_symlink():
        raise RefusingToOverwriteError(f"Refusing to overwrite existing file {out}")
    sig = key.sign(digest)
    write_new_file(out, signature_file_text(sig, key.public_key))
    if json_output:
        click.echo(
            dumps_compact(
                {
                    "signature_file": str(out),
                    "public_key": str(key.public_key),
                    "key_id": key.public_key.key_id,
                }
            )
        )
    else:
        click.echo(f"Signature written to {out}")
        note(f"Signed with key {key_label(key.public_key)}")


def _load_public_key(value: str) -> PublicKey:
    """``-k`` takes a key string, an OpenSSH ``ssh-ed25519`` line or the path of a ``.pub``
    file (minisign, asfaload or OpenSSH)."""
    if os.path.isfile(value):
        return PublicKey.from_file(value)
    return PublicKey.from_input(value)


def _artifact_signers(path: str) -> list[PublicKey]:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(1 << 20)
    except FileNotFoundError as exc:
        raise FormatError(f"Signers file not found: {path}") from exc
    except OSError as exc:
        raise FormatError(f"Cannot read signers file {path}: {exc.strerror}") from exc
    signers = SignersFile.parse(raw)
    keys: list[PublicKey] = []
    for group in signers.artifact_groups():
        keys.extend(k for k in group.signers if k not in keys)
    return keys


def _verify_against(
    file: str, sigfile: SignatureFile, keys: list[PublicKey]
) -> tuple[PublicKey, str]:
    sig = sigfile.signature
    candidates = [k for k in keys if k.algorithm == sig.algorithm]
    if sigfile.public_key is not None:
        candidates = [k for k in candidates if k == sigfile.public_key]
    if sig.box is not None:
        candidates = [k for k in candidates if k.keynum == sig.box.keynum]
    if not candidates:
        raise SignatureVerificationError(
            "Signature verification failed: the signature is not from an artifact signer"
        )
    last: VerificationError | None = None
    for key in candidates:
        try:
            return key, verify_file(file, sigfile, key)
        except VerificationError as exc:
            last = exc
    assert last is not None
    raise SignatureVerificationError(f"Signature verification failed: {last}")


@click.command("verify-sig")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "-s",
    "-x",
    "--signature",
    required=True,
    type=click.Path(dir_okay=False),
    help="Signature file (minisign box, our ed25519 JSON form, or a bare wire string).",
)
@click.option("-k", "--public-key", help="Public key: a key string or a .pub file.")
@click.option(
    "--signers-file",
    type=click.Path(dir_okay=False),
    help="Accept a signature by any artifact signer of this signers file.",
)
@json_option
@handle_errors
def verify_sig(
    file: str,
    signature: str,
    public_key: str | None,
    signers_file: str | None,
    json_output: bool,
) -> None:
    """Verify a signature of a local FILE against one key or a signers file.

    Accepts signatures over the file's SHA-512 digest (what asfaload signs) and, for minisign,
    signatures the minisign tool made over the file itself, including legacy (-l) ones.

    \b
    Examples:
      asfaload verify-sig release.tar.gz -s release.tar.gz.minisig -k alice.pub
      asfaload verify-sig release.tar.gz -s release.tar.gz.sig.json -k ~/.ssh/id_ed25519.pub
      asfaload verify-sig release.tar.gz -s SIG --signers-file asfaload.signers.json
    """
    if (public_key is None) == (signers_file is None):
        raise FormatError("Give exactly one of --public-key and --signers-file")
    sigfile = read_signature_file(signature)
    if public_key is not None:
        keys = [_load_public_key(public_key)]
    else:
        assert signers_file is not None
        keys = _artifact_signers(signers_file)
    key, covers = _verify_against(file, sigfile, keys)
    if json_output:
        click.echo(
            dumps_compact(
                {"verified": True, "public_key": str(key), "key_id": key.key_id, "covers": covers}
            )
        )
    else:
        click.echo(
            f"Signature verification successful! Signed by {key_label(key)} {_COVERS[covers]}."
        )


@click.command("get-digest")
@click.argument("file", type=click.Path(dir_okay=False))
@fingerprint_option
@json_option
@handle_errors
def get_digest(file: str, show_fingerprint: bool, json_output: bool) -> None:
    """Print the SHA-512 digest of a local FILE, as `sha512:<hex>`: what a signer signs.

    On a terminal (or always with --show-fingerprint) the digest is also drawn on stderr as the
    randomart picture sign-pending shows before it signs, so a file fetched from the backend
    and a copy you made yourself can be compared at a glance.

    \b
    Examples:
      asfaload get-digest release.tar.gz
      asfaload get-digest asfaload.index.json --show-fingerprint
      asfaload get-digest release.tar.gz --json
    """
    digest = sha512_file(file)
    writer = fingerprint_writer(show_fingerprint)
    if writer is not None:
        writer(file, digest)
    if json_output:
        click.echo(
            dumps_compact(
                {
                    "file": file,
                    "digest": digest_string(digest),
                    "randomart": randomart(digest, FINGERPRINT_TITLE),
                }
            )
        )
    else:
        click.echo(digest_string(digest))


def register(group: click.Group) -> None:
    group.add_command(get_digest)
    group.add_command(new_keys)
    group.add_command(sign_file)
    group.add_command(verify_sig)
