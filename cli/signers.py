"""``new-signers-file``: build a signers file from public keys and thresholds (manual)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click

from asfaload.crypto import PublicKey, ensure_dir, write_new_file
from asfaload.errors import (
    AsfaloadError,
    RefusingToOverwriteError,
    SignersFileError,
)
from asfaload.model.signers import SignerGroup, SignersFile

from ._common import F, debug_path, dumps_compact, handle_errors, json_option, key_label, note


@dataclass(frozen=True)
class _GroupSpec:
    label: str  # "Artifact signers", used in the summary
    noun: str  # "artifact signer", used in messages
    key_opt: str
    file_opt: str
    threshold_opt: str


_ARTIFACT = _GroupSpec(
    "Artifact signers",
    "artifact signer",
    "--artifact-signer",
    "--artifact-signer-file",
    "--artifact-threshold",
)
_ADMIN = _GroupSpec(
    "Admin keys", "admin key", "--admin-key", "--admin-key-file", "--admin-threshold"
)
_MASTER = _GroupSpec(
    "Master keys", "master key", "--master-key", "--master-key-file", "--master-threshold"
)
_REVOCATION = _GroupSpec(
    "Revocation keys",
    "revocation key",
    "--revocation-key",
    "--revocation-key-file",
    "--revocation-threshold",
)


def _collect(spec: _GroupSpec, strings: tuple[str, ...], files: tuple[str, ...]) -> list[PublicKey]:
    keys: list[PublicKey] = []
    for s in strings:
        try:
            keys.append(PublicKey.from_input(s))
        except AsfaloadError as exc:
            raise type(exc)(f"Invalid key for {spec.key_opt}: {exc}") from None
    for f in files:
        try:
            keys.append(PublicKey.from_file(f))
        except AsfaloadError as exc:
            raise type(exc)(f"Invalid key file for {spec.file_opt}: {exc}") from None
    seen: set[PublicKey] = set()
    for k in keys:
        if k in seen:
            # A key listed twice would count twice towards the threshold (so it is refused).
            raise SignersFileError(f"Duplicate {spec.noun} key: {k}")
        seen.add(k)
    return keys


def _group(
    spec: _GroupSpec, keys: list[PublicKey], threshold: int | None, *, required: bool
) -> SignerGroup | None:
    if not keys:
        if required:
            raise SignersFileError(
                f"At least one {spec.noun} is required ({spec.key_opt} or {spec.file_opt})"
            )
        if threshold is not None:
            raise SignersFileError(f"{spec.threshold_opt} was given but no {spec.noun}s")
        return None
    if threshold is None:
        raise SignersFileError(f"{spec.threshold_opt} is required when {spec.noun}s are provided")
    if not 1 <= threshold <= len(keys):
        raise SignersFileError(
            f"{spec.threshold_opt} must be between 1 and the number of {spec.noun}s "
            f"({len(keys)}), got {threshold}"
        )
    return SignerGroup(tuple(keys), threshold)


def _summary(group: SignerGroup | None) -> tuple[int, int | None]:
    return (0, None) if group is None else (group.size, group.threshold)


def _key_options(spec: _GroupSpec, short: str, short_threshold: str, what: str) -> Callable[[F], F]:
    def deco(f: F) -> F:
        f = click.option(
            short_threshold,
            spec.threshold_opt,
            type=int,
            help=f"Number of {spec.noun}s required{what}.",
        )(f)
        f = click.option(
            spec.file_opt,
            multiple=True,
            type=click.Path(dir_okay=False),
            help=f".pub key file of one {spec.noun} (minisign, asfaload, or OpenSSH "
            "ssh-ed25519 such as ~/.ssh/id_ed25519.pub). Repeatable.",
        )(f)
        return click.option(
            short,
            spec.key_opt,
            multiple=True,
            metavar="BASE64_KEY",
            help=f"Public key of one {spec.noun}: minisign:…, ed25519:… or an OpenSSH line "
            "'ssh-ed25519 AAAA… [comment]' (as https://github.com/USER.keys lists them). "
            "Repeatable.",
        )(f)

    return deco


@click.command("new-signers-file")
@_key_options(_ARTIFACT, "-a", "-A", " to complete a signature")
@_key_options(_ADMIN, "-d", "-D", " to approve changes (required when admin keys are given)")
@_key_options(_MASTER, "-m", "-M", " (required when master keys are given)")
@_key_options(_REVOCATION, "-r", "-R", " to revoke (required when revocation keys are given)")
@click.option(
    "-o",
    "--output-file",
    required=True,
    help="Path for the new signers file. Must not exist; parent directories are created.",
)
@json_option
@handle_errors
def new_signers_file(
    artifact_signer: tuple[str, ...],
    artifact_signer_file: tuple[str, ...],
    artifact_threshold: int | None,
    admin_key: tuple[str, ...],
    admin_key_file: tuple[str, ...],
    admin_threshold: int | None,
    master_key: tuple[str, ...],
    master_key_file: tuple[str, ...],
    master_threshold: int | None,
    revocation_key: tuple[str, ...],
    revocation_key_file: tuple[str, ...],
    revocation_threshold: int | None,
    output_file: str,
    json_output: bool,
) -> None:
    """Create a new signers file (who signs artifacts, administers and revokes).

    Keys are minisign or ed25519, one algorithm per file. OpenSSH ssh-ed25519 public keys
    (a ~/.ssh/id_ed25519.pub file or its line) are ed25519 keys: their owners sign with
    -K ~/.ssh/id_ed25519. Other SSH key types (rsa, ecdsa, sk-…) are refused.

    \b
    Examples:
      asfaload new-signers-file -a minisign:RW… -a minisign:RW… -A 2 -o signers.json
      asfaload new-signers-file --artifact-signer-file ~/.ssh/id_ed25519.pub \\
          --artifact-signer "$(curl -s https://github.com/bob.keys | grep ^ssh-ed25519)" \\
          -A 2 -o asfaload.signers/asfaload.signers.json
    """
    out = Path(output_file)
    if out.exists() or out.is_symlink():
        raise RefusingToOverwriteError(f"Refusing to overwrite existing file {output_file}")
    artifact = _group(
        _ARTIFACT,
        _collect(_ARTIFACT, artifact_signer, artifact_signer_file),
        artifact_threshold,
        required=True,
    )
    assert artifact is not None
    admin = _group(
        _ADMIN, _collect(_ADMIN, admin_key, admin_key_file), admin_threshold, required=False
    )
    master = _group(
        _MASTER, _collect(_MASTER, master_key, master_key_file), master_threshold, required=False
    )
    revocation = _group(
        _REVOCATION,
        _collect(_REVOCATION, revocation_key, revocation_key_file),
        revocation_threshold,
        required=False,
    )
    signers = SignersFile.create(
        artifact_signers=[artifact],
        admin_keys=None if admin is None else [admin],
        master_keys=None if master is None else [master],
        revocation_keys=None if revocation is None else [revocation],
    )
    ensure_dir(out.parent)
    write_new_file(out, signers.to_bytes().decode("utf-8"))

    counts = {
        "artifact_signers": _summary(artifact),
        "admin_keys": _summary(admin),
        "master_keys": _summary(master),
        "revocation_keys": _summary(revocation),
    }
    if json_output:
        click.echo(
            dumps_compact(
                {
                    "output_file": output_file,
                    "artifact_signers_count": counts["artifact_signers"][0],
                    "artifact_threshold": counts["artifact_signers"][1],
                    "admin_keys_count": counts["admin_keys"][0],
                    "admin_threshold": counts["admin_keys"][1],
                    "master_keys_count": counts["master_keys"][0],
                    "master_threshold": counts["master_keys"][1],
                    "revocation_keys_count": counts["revocation_keys"][0],
                    "revocation_threshold": counts["revocation_keys"][1],
                }
            )
        )
        return
    click.echo(f"Signers file created successfully at: {debug_path(output_file)}")
    for spec, key in (
        (_ARTIFACT, "artifact_signers"),
        (_ADMIN, "admin_keys"),
        (_MASTER, "master_keys"),
        (_REVOCATION, "revocation_keys"),
    ):
        n, t = counts[key]
        click.echo(f"{spec.label}: {n} (threshold: {'none' if t is None else t})")
    # The manual fixes the summary on stdout line for line; the keys, by key id, go to stderr
    # for the person checking that the file names the right people.
    for spec, group in (
        (_ARTIFACT, artifact),
        (_ADMIN, admin),
        (_MASTER, master),
        (_REVOCATION, revocation),
    ):
        for k in group.signers if group is not None else ():
            note(f"  {spec.noun}: {key_label(k)}")


def register(group: click.Group) -> None:
    group.add_command(new_signers_file)
