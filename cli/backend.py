"""Backend commands of the manual: ``register-repo``, ``update-signers``, ``register-assets``,
``list-pending``, ``sign-pending``, ``signature-status`` and ``revoke``; and two public reads,
``check-index`` (is a release registered and signed) and ``ping``.

Each of the manual's takes ``-K/--secret-key``, ``-p/-P/--password-command`` (and
``ASFALOAD_<COMMAND>_PASSWORD[_FILE]``, ``ASFALOAD_PASSWORD_COMMAND``), ``-u/--backend-url`` and
``--json``, and prints exactly the manual's lines; the public reads take no key.

``sign-pending`` and ``revoke`` also take ``--git MIRROR``: instead of calling the backend, they
fetch the mirror repository, build the exact commit the rules derive and ``git push`` it (the
mirror's pre-receive hook accepts nothing else); the output is the same as over HTTP.

``sign-pending``, ``revoke`` and ``signature-status`` take the mirror path of a file or the URL a
person has in hand: a GitHub or GitLab release page, one of its assets' download URLs, or a file
of a file-server project; the URL names the release's index (``asfaload.layout``), as for
``download`` and ``check-index``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from asfaload import layout
from asfaload.client.signing import revoke as revoke_file
from asfaload.client.signing import sign_pending as sign_pending_file
from asfaload.crypto import SecretKey
from asfaload.errors import NotFoundError, RevokedError, RuleViolation, ThresholdNotMetError

from ._common import (
    BackendUrls,
    backend_url_option,
    confirm_or_abort,
    dumps_compact,
    fingerprint_option,
    fingerprint_writer,
    handle_errors,
    json_option,
    key_label,
    load_secret_key,
    note,
    one_line,
    password_options,
    secret_key_option,
)

if TYPE_CHECKING:  # the HTTP client is imported when a command talks HTTP (--git does not)
    from asfaload.client.api import BackendClient, RegistrationResult

F = TypeVar("F", bound=Callable[..., Any])


def check_target(params: dict[str, Any]) -> None:
    """A command's FILE_PATH_OR_URL that is a URL must name a release: said before a password
    is asked, not after."""
    if isinstance(params.get("file_path"), str):
        target_path(params["file_path"])


def authenticated(f: Callable[..., None]) -> Callable[..., None]:
    """:func:`authenticated_with` the default check of FILE_PATH_OR_URL."""
    return authenticated_with(check_target)(f)


def authenticated_with(
    before_key: Callable[[dict[str, Any]], None],
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """The options every authenticated command shares and the error wrapper; the command gets
    the loaded ``key`` (after -K, -p/-P, the env vars or the prompt) instead of those options.
    ``before_key`` sees the command's parameters first: what can be refused or asked without
    the key is, before its password is."""

    def deco(f: Callable[..., None]) -> Callable[..., None]:
        @functools.wraps(f)
        def with_key(
            *args: Any,
            secret_key: str,
            password: str | None,
            password_file: str | None,
            password_command: str | None,
            **kw: Any,
        ) -> None:
            before_key(kw)
            key = load_secret_key(secret_key, password, password_file, password_command)
            f(*args, key=key, **kw)

        g: Callable[..., None] = handle_errors(with_key)
        g = json_option(g)
        g = backend_url_option(g)
        g = password_options(g)
        return secret_key_option(g)

    return deco


def optionally_authenticated(f: Callable[..., None]) -> Callable[..., None]:
    """As :func:`authenticated`, for a public read: ``-K`` may be left out, and the command gets
    ``key=None`` (its requests then go unsigned)."""

    @functools.wraps(f)
    def with_key(
        *args: Any,
        secret_key: str | None,
        password: str | None,
        password_file: str | None,
        password_command: str | None,
        **kw: Any,
    ) -> None:
        key = (
            None
            if secret_key is None
            else load_secret_key(secret_key, password, password_file, password_command)
        )
        f(*args, key=key, **kw)

    g: Callable[..., None] = handle_errors(with_key)
    g = json_option(g)
    g = backend_url_option(g)
    g = password_options(g)
    return click.option(
        "-K",
        "--secret-key",
        type=click.Path(dir_okay=False),
        help="Your secret key file; optional, the status is public.",
    )(g)


def git_option(f: F) -> F:
    return click.option(
        "--git",
        "git_mirror",
        metavar="MIRROR",
        help="Submit by git push to this mirror repository (a path or a URL git understands) "
        "instead of calling the backend.",
    )(f)


def is_url(target: str) -> bool:
    return target.startswith(("https://", "http://"))


def target_path(target: str) -> str:
    """The mirror path ``target`` names: itself, or for a release page or asset URL (or a
    file-server file) the release index path, found as ``download`` and ``check-index`` do."""
    if not is_url(target):
        return target
    from asfaload.client.locate import configured_gitlab_hosts

    return layout.release_index_path(target, None, gitlab_hosts=configured_gitlab_hosts())


def _client(backend_url: BackendUrls, key: SecretKey | None) -> BackendClient:
    from asfaload.client.api import BackendClient

    return BackendClient(backend_url, secret_key=key)


def _print_registration(
    res: RegistrationResult, json_output: bool, headline: str, what: str
) -> None:
    if json_output:
        click.echo(
            dumps_compact(
                {
                    "success": res.success,
                    "project_id": res.project_id,
                    "required_signers": list(res.required_signers),
                    "message": res.message,
                }
            )
        )
        return
    click.echo(headline)
    click.echo(f"Project ID: {res.project_id}")
    click.echo(f"Required signers ({len(res.required_signers)}): {', '.join(res.required_signers)}")
    click.echo(f"Next step: signers must submit signatures to activate the {what}.")
    # The manual fixes the lines above; the key ids people compare go beside them, on stderr.
    for key in res.required_signers:
        note(f"  required: {_key_label(key)}")


def _key_label(key: str) -> str:
    from asfaload.crypto import PublicKey
    from asfaload.errors import AsfaloadError

    try:
        return key_label(PublicKey.parse(key))
    except AsfaloadError:
        return key


@click.command("register-repo")
@click.argument("signers_file_url")
@authenticated
def register_repo(
    signers_file_url: str,
    key: SecretKey,
    backend_url: BackendUrls,
    json_output: bool,
) -> None:
    """Register a repository with the backend (SIGNERS_FILE_URL: the signers file on the forge).

    \b
    Examples:
      asfaload register-repo -K ~/.asfaload/alice https://github.com/acme/tool/blob/main/asfaload.signers/asfaload.signers.json
      asfaload register-repo -K ~/.ssh/id_ed25519 --password-command 'pass show ssh' SIGNERS_FILE_URL
    """
    with _client(backend_url, key) as api:
        res = api.register_repo(signers_file_url)
    _print_registration(res, json_output, "Repository registered successfully!", "project")


@click.command("update-signers")
@click.argument("signers_file_url")
@authenticated
def update_signers(
    signers_file_url: str,
    key: SecretKey,
    backend_url: BackendUrls,
    json_output: bool,
) -> None:
    """Propose an update to an existing project's signers file.

    \b
    Examples:
      asfaload update-signers -K ~/.asfaload/alice https://github.com/acme/tool/blob/main/asfaload.signers/v2.json
      ASFALOAD_PASSWORD_COMMAND='pass show asfaload' asfaload update-signers -K KEY NEW_SIGNERS_FILE_URL
    """
    with _client(backend_url, key) as api:
        res = api.update_signers(signers_file_url)
    _print_registration(res, json_output, "Signers update proposed successfully!", "update")


@click.command("register-assets")
@click.option(
    "--github-release-url",
    help="URL of a GitHub release page. Mutually exclusive with --csum-file.",
)
@click.option(
    "--gitlab-release-url",
    help="URL of a GitLab release page. Mutually exclusive with the other two.",
)
@click.option(
    "--csum-file",
    "csum_files",
    multiple=True,
    help="URL of a checksums file. Repeatable; all must share a common parent path.",
)
@authenticated
def register_assets(
    github_release_url: str | None,
    gitlab_release_url: str | None,
    csum_files: tuple[str, ...],
    key: SecretKey,
    backend_url: BackendUrls,
    json_output: bool,
) -> None:
    """Register assets (a GitHub/GitLab release or checksum files) for signing.

    \b
    Examples:
      asfaload register-assets -K ~/.asfaload/alice --github-release-url https://github.com/acme/tool/releases/tag/v1.0
      asfaload register-assets -K ~/.ssh/id_ed25519 --csum-file https://files.example.com/tool/v1/SHA256SUMS
    """
    given = sum(1 for x in (github_release_url, gitlab_release_url, csum_files) if x)
    if given != 1:
        raise RuleViolation(
            "--github-release-url, --gitlab-release-url and --csum-file are mutually exclusive; "
            "give exactly one of them"
        )
    with _client(backend_url, key) as api:
        res = api.register_assets(
            github_release_url=github_release_url,
            gitlab_release_url=gitlab_release_url,
            csum_files=list(csum_files) or None,
        )
    if json_output:
        click.echo(
            dumps_compact(
                {
                    "success": res.success,
                    "message": res.message,
                    "index_file_path": res.index_file_path,
                }
            )
        )
        return
    click.echo("Assets registered successfully! Remember you still need to sign it yourself!")
    click.echo(f"Index file path: {res.index_file_path}")


@click.command("list-pending")
@authenticated
def list_pending(
    key: SecretKey,
    backend_url: BackendUrls,
    json_output: bool,
) -> None:
    """List the files on the backend that still need your signature.

    \b
    Examples:
      asfaload list-pending -K ~/.asfaload/bob
      asfaload list-pending -K ~/.ssh/id_ed25519 --password-command 'pass show ssh' --json
    """
    with _client(backend_url, key) as api:
        files = api.pending_files()
    if json_output:
        click.echo(
            dumps_compact(
                {
                    "file_paths": [f.file_path for f in files],
                    "files": [{"file_path": f.file_path, "status": f.status} for f in files],
                }
            )
        )
    elif not files:
        click.echo("No pending signatures found.")
    else:
        click.echo("Files requiring your signature:")
        for f in files:
            click.echo(f"  - {f.file_path} ({f.status})")


@click.command("sign-pending")
@click.argument("file_path", metavar="FILE_PATH_OR_URL")
@git_option
@fingerprint_option
@authenticated
def sign_pending(
    file_path: str,
    git_mirror: str | None,
    show_fingerprint: bool,
    key: SecretKey,
    backend_url: BackendUrls,
    json_output: bool,
) -> None:
    """Sign a pending file: its mirror path as list-pending prints it, or the release's URL.

    A release page or asset URL names the release's index; when the index is signed and its
    revocation waits for your signature, the revocation is what gets signed.

    Before signing each file of the request, its path, SHA-512 digest and a randomart picture
    of the digest are written to stderr (on a terminal, or always with --show-fingerprint):
    compare them with `asfaload get-digest` of a copy you obtained yourself.

    \b
    Examples:
      asfaload sign-pending -K ~/.asfaload/bob https://github.com/acme/tool/releases/tag/v1.0
      asfaload sign-pending -K ~/.asfaload/bob https/github.com/443/acme/tool/releases/tag/v1.0/asfaload.index.json
      asfaload sign-pending -K ~/.ssh/id_ed25519 --password-command 'pass show ssh' FILE_PATH
      asfaload sign-pending -K KEY --show-fingerprint --git https://asfaload.example/mirror.git FILE_PATH
    """
    before_sign = fingerprint_writer(show_fingerprint)
    path = target_path(file_path)
    if git_mirror is not None:
        from asfaload.client.gitsign import sign_pending_by_git

        complete = sign_pending_by_git(
            git_mirror, key, path, before_sign=before_sign, release=is_url(file_path)
        ).is_complete
    else:
        with _client(backend_url, key) as api:
            if is_url(file_path):
                path = _pending_for_me(api, path)
            complete = sign_pending_file(api, key, path, before_sign=before_sign)
    if json_output:
        click.echo(dumps_compact({"is_complete": complete}))
    else:
        click.echo("Success! Signature submitted" + (" (complete)" if complete else ""))


def _pending_for_me(api: BackendClient, index: str) -> str:
    """For a release URL: the index, or its pending revocation when that is what waits for
    this signer (a signed release has nothing else to sign)."""
    waiting = {f.file_path for f in api.pending_files()}
    revocation = layout.pending_revocation_path(index)
    if index not in waiting and revocation in waiting:
        return revocation
    return index


@click.command("signature-status")
@click.argument("file_path", metavar="FILE_PATH_OR_URL")
@optionally_authenticated
def signature_status(
    file_path: str,
    key: SecretKey | None,
    backend_url: BackendUrls,
    json_output: bool,
) -> None:
    """Show a file's state (pending, complete or revoked), who signed it and who is still
    needed, per group; for a revoked file, when and by whom. A release page or asset URL
    names the release's index.

    \b
    Examples:
      asfaload signature-status https://github.com/acme/tool/releases/tag/v1.0
      asfaload signature-status https/github.com/443/acme/tool/releases/tag/v1.0/asfaload.index.json
      asfaload signature-status --json https://gitlab.com/acme/tool/-/releases/v2.0
    """
    with _client(backend_url, key) as api:
        status = api.signature_status(target_path(file_path))
    if json_output:
        click.echo(dumps_compact(dict(status.document)))
        return
    for line in status_lines(status.document):
        click.echo(line)


def _signer(doc: Any) -> str:
    if isinstance(doc, dict):
        return f"{doc.get('key_id')} {doc.get('public_key')}"
    return str(doc)


def _group_lines(groups: Any, indent: str) -> list[str]:
    out: list[str] = []
    for g in groups if isinstance(groups, list) else []:
        state = "met" if g.get("met") else f"{g.get('needed')} more needed"
        signed = g.get("signed") or []
        out.append(
            f"{indent}Group {g.get('role')}: {len(signed)} of {g.get('size')} signed, "
            f"threshold {g.get('threshold')}, {state}"
        )
        out.extend(f"{indent}  signed:  {_signer(k)}" for k in signed)
        out.extend(f"{indent}  missing: {_signer(k)}" for k in g.get("missing") or [])
    return out


def status_lines(doc: Any) -> list[str]:
    """The human form of a ``GET /v1/signatures/…`` answer; the first line is
    ``<path>: <state>``, as before the details were added."""
    lines = [f"{doc.get('file_path')}: {doc.get('status')}"]
    lines.append(f"Kind: {doc.get('kind')} (complete when {doc.get('rule')})")
    lines.extend(_group_lines(doc.get("groups"), ""))
    rev = doc.get("revocation")
    if isinstance(rev, dict):
        what = "Revoked" if rev.get("status") == "complete" else "Revocation pending"
        lines.append(f"{what}: {rev.get('timestamp')} by {_signer(rev.get('initiator'))}")
        if rev.get("reason"):
            # Free text from the revoker: one printable line, so it cannot forge output lines.
            reason = "".join(c if c.isprintable() else "?" for c in one_line(str(rev["reason"])))
            lines.append(f"  reason: {reason}")
        lines.extend(_group_lines(rev.get("groups"), "  "))
    return lines


@click.command("revoke")
@click.argument("file_path", metavar="FILE_PATH_OR_URL")
@git_option
@click.option(
    "-y",
    "--yes",
    is_flag=True,
    help="Do not ask for confirmation on a terminal (without a terminal nothing is asked).",
)
@authenticated_with(lambda params: _confirm_revoke(params["file_path"], params["yes"]))
def revoke(
    file_path: str,
    git_mirror: str | None,
    yes: bool,
    key: SecretKey,
    backend_url: BackendUrls,
    json_output: bool,
) -> None:
    """Revoke a previously signed file: its mirror path, or the release's URL (its index).

    A revocation cannot be undone: every download of the release is refused once enough
    revocation keys have signed it. On a terminal it asks first (--yes does not); without a
    terminal (a script, CI) it proceeds, as it always has.

    \b
    Examples:
      asfaload revoke -K ~/.asfaload/alice https://github.com/acme/tool/releases/tag/v1.0
      asfaload revoke -K ~/.asfaload/alice --yes https/github.com/443/acme/tool/releases/tag/v1.0/asfaload.index.json
      asfaload revoke -K ~/.ssh/id_ed25519 --password-command 'pass show ssh' --git MIRROR FILE_PATH
    """
    file_path = target_path(file_path)
    if git_mirror is not None:
        from asfaload.client.gitsign import revoke_by_git
        from asfaload.rules.status import REVOKE_MESSAGES, revocation_status

        pushed = revoke_by_git(git_mirror, key, file_path)
        status = revocation_status(file_path, pushed.change)
        success, message = True, REVOKE_MESSAGES[status]
    else:
        with _client(backend_url, key) as api:
            res = revoke_file(api, key, file_path)
        success, message, status = res.success, res.message, res.status
    if json_output:
        click.echo(dumps_compact({"success": success, "message": message, "status": status}))
    else:
        # The manual fixes this line whatever the threshold; a pending revocation is said on
        # stderr, so that nobody takes a revocation that awaits co-signers for a done one.
        click.echo(f"Success! File revoked: {file_path}")
        if status == "pending":
            note(
                "the revocation is pending: it takes effect once the other revokers sign "
                f"{layout.pending_revocation_path(file_path)} (asfaload sign-pending)"
            )


def _confirm_revoke(target: str, yes: bool) -> None:
    """Asked before the key's password: a person who answers no has typed nothing secret."""
    confirm_or_abort(
        f"Revoke {target_path(target)}? Downloads of it will be refused once the revocation "
        "is signed",
        yes,
    )


@click.command("check-index")
@click.argument("url")
@click.option(
    "--type",
    "forge",
    type=click.Choice(layout.FORGES),
    help="Forge type; detected from the URL's host when not given.",
)
@backend_url_option
@json_option
@handle_errors
def check_index(url: str, forge: str | None, backend_url: BackendUrls, json_output: bool) -> None:
    """Is the release of URL registered on the backend, and signed?

    URL is a GitHub or GitLab release page or the download URL of one of its assets (or a file
    of a file-server project: its directory's index). Prints the release index path and its
    state; exits 0 only when the index is registered and complete, 1 with one line otherwise
    (not registered, pending, revoked, or the backend cannot be asked).

    \b
    Examples:
      asfaload check-index https://github.com/acme/tool/releases/tag/v1.0
      asfaload check-index https://github.com/acme/tool/releases/download/v1.0/tool.tar.gz --json
      asfaload check-index https://gitlab.com/acme/tool/-/releases/v2.0
    """
    from asfaload.client.locate import configured_gitlab_hosts

    index = layout.release_index_path(url, forge, gitlab_hosts=configured_gitlab_hosts())
    with _client(backend_url, None) as api:
        try:
            status = api.signature_status(index)
        except NotFoundError:
            raise NotFoundError(
                f"Not registered: the backend has no release index {index}"
            ) from None
    if status.status == "revoked":
        raise RevokedError(f"{index}: revoked")
    if status.status != "complete":
        raise ThresholdNotMetError(
            f"{index}: {status.status} (registered, not yet signed by enough signers)"
        )
    if json_output:
        click.echo(
            dumps_compact(
                {"url": url, "index_file_path": index, "registered": True, "status": "complete"}
            )
        )
    else:
        click.echo(f"{index}: complete")


@click.command("ping")
@backend_url_option
@json_option
@handle_errors
def ping(backend_url: BackendUrls, json_output: bool) -> None:
    """Check that the backend answers (GET /v1/ping); exits 1 with one line when it does not.

    \b
    Examples:
      asfaload ping
      asfaload ping -u https://asfaload.example --json
    """
    with _client(backend_url, None) as api:
        doc = api.ping_status()
        answered = api.base_url  # the first backend that answered, in failover order
    if json_output:
        click.echo(dumps_compact({"backend_url": answered, **doc}))
    else:
        click.echo(f"Backend {answered} is up (status: {doc['status']})")


COMMANDS = (
    check_index,
    ping,
    register_repo,
    update_signers,
    register_assets,
    list_pending,
    sign_pending,
    signature_status,
    revoke,
)


def register(group: click.Group) -> None:
    for cmd in COMMANDS:
        group.add_command(cmd)
