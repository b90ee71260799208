"""Submitting by ``git push`` instead of HTTP: the client side of the mirror's pre-receive hook.

The mirror accepts a pushed commit only if it is EXACTLY what the rules engine derives from its
parent for one push-allowed operation (``asfaload.rules.push``). So the client does what the
server's writer would do: fetch the mirror's ``main``, read the exact pending bytes from the
fetched tree, sign their SHA-512 (the signers file AND its metadata for a signers request, as
HTTP ``sign-pending`` does), run ``rules.apply(tip_tree, op, now)`` with ``now`` = the commit's
committer time, build the tree along the changed paths with the store's own helper, commit with
the change's message, and push the commit to ``refs/heads/main``.

A push that loses a race (someone else's commit landed between our fetch and our push) is
refetched, rebuilt on the new tip and pushed again, a bounded number of times; the rules
re-decide each attempt, so a request completed meanwhile is reported as such, never
double-signed. A push the hook refuses is reported with the hook's own one-line reason.

The mirror is given as anything ``git`` can fetch from: a path, ``file://``, ``ssh`` or
``http(s)`` (pushing needs a transport that accepts pushes: a path, ssh or smart HTTP).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pygit2

from .. import layout
from ..crypto import SecretKey
from ..errors import (
    ConcurrentUpdateError,
    FormatError,
    NetworkError,
    NotFoundError,
    RuleViolation,
    VerificationError,
)

# Through the packages' public facades (docs/architecture.md), not their inner modules.
from ..rules import AddSignatures, Change, Op, Revoke, TreeView, apply, pending_request
from ..store import MAIN, GitTreeView, apply_change
from ..store.gitlimits import REMOTE_CONFIG, check_remote, limited, run_git
from .signing import BeforeSign, build_revocation, sign_files
from .source import cache_root, mirror_key

DEFAULT_ATTEMPTS = 5
# Where the fetched tip is kept in the scratch repository.
_TRACKING = "refs/remotes/mirror/main"
# The mirror's tip as this client last verified it (replayed through the rules).
VERIFIED_REF = "refs/asfaload/verified"
COMMITTER_NAME = "asfaload signer"
COMMITTER_EMAIL = "signer@asfaload.invalid"
GIT_TIMEOUT = 300.0

# Push outcomes git reports for a ref that moved under us: refetch and rebuild.
_LOST_RACE = (
    "fetch first",
    "non-fast-forward",
    "stale info",
    "failed to update ref",
    "failed to lock",
    "cannot lock",
    "incorrect old value",
)
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


@dataclass(frozen=True)
class PushedChange:
    """A commit the mirror accepted: its id and the change the rules derived for it."""

    commit_id: str
    change: Change
    subject: str

    @property
    def is_complete(self) -> bool:
        """True when the signatures completed the request (the pending envelope is gone)."""
        return layout.pending_signatures_path(self.subject) in self.change.deletes


# --- git plumbing -----------------------------------------------------------------------------
_SCP_LIKE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.@-]*:[^:]")


def resolve_remote(remote: str) -> str:
    """``remote`` as git should see it from a scratch directory: URLs of the allowed transports
    and scp-like ``user@host:path`` unchanged, local paths made absolute (git runs elsewhere).

    Nothing git would take for an option (``--upload-pack=…``) or a command-running transport
    (``ext::``, ``fd::``) gets through: the location comes from a command line or a document.
    """
    try:
        if check_remote(remote, "mirror location"):
            return remote
    except FormatError as exc:
        raise RuleViolation(str(exc)) from None
    if os.path.exists(remote):
        return os.path.abspath(remote)
    if _SCP_LIKE.match(remote):
        return remote  # scp-like ssh syntax: user@host:path
    return os.path.abspath(remote)


def _git_env() -> dict[str, str]:
    env = dict(os.environ)
    # Never hang on a credential prompt, and keep git's status words parseable.
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["LC_ALL"] = "C"
    env.pop("GIT_DIR", None)
    env.pop("GIT_WORK_TREE", None)
    return env


def _last_line(text: str) -> str:
    lines = [ln.strip() for ln in _ANSI.sub("", text).splitlines() if ln.strip()]
    return lines[-1] if lines else "git failed"


def _remote_lines(stderr: str) -> list[str]:
    """The lines the remote side (our hook) printed, without git's ``remote:`` prefix."""
    out = []
    for line in _ANSI.sub("", stderr).splitlines():
        if line.startswith("remote:"):
            text = line[len("remote:") :].strip()
            if text:
                out.append(text)
    return out


def push_failure(stderr: str) -> str:
    """Why git could not push at all (no ref status): git's first fatal line, or its last."""
    if "git-http-push failed" in stderr:
        # git falls back to WebDAV when the server does not speak smart HTTP.
        return (
            "this URL does not accept pushes (dumb HTTP is read-only); "
            "use the mirror's path, an ssh URL or a smart-HTTP URL"
        )
    return _git_failure(stderr)


def _git_failure(stderr: str) -> str:
    lines = [ln.strip() for ln in _ANSI.sub("", stderr).splitlines() if ln.strip()]
    fatal = [ln for ln in lines if ln.startswith("fatal:")]
    return fatal[0] if fatal else _last_line(stderr)


@dataclass(frozen=True)
class _PushStatus:
    ok: bool
    lost_race: bool
    reason: str


def parse_push_output(stdout: str, stderr: str) -> _PushStatus | None:
    """Read ``git push --porcelain``: the status of ``refs/heads/main``, or None when git never
    got as far as a ref status (transport failure)."""
    for line in stdout.splitlines():
        parts = line.split("\t")
        if len(parts) < 3 or not parts[1].endswith(":" + MAIN):
            continue
        flag, summary = parts[0], parts[2]
        if flag in (" ", "*", "+", "="):
            return _PushStatus(True, False, summary)
        lowered = summary.lower()
        if "hook declined" in lowered:
            remote = _remote_lines(stderr)
            ours = [ln for ln in remote if ln.startswith("asfaload:")]
            reason = " ".join(ours or remote) or f"the mirror refused the push {summary}"
            return _PushStatus(False, False, reason)
        if any(word in lowered for word in _LOST_RACE):
            return _PushStatus(False, True, summary)
        said = " ".join(_remote_lines(stderr))
        return _PushStatus(False, False, f"the mirror refused the push {summary} {said}".strip())
    return None


class ScratchClone:
    """A private bare repository that fetches the mirror's ``main`` and pushes commits to it.

    It is kept in the user's cache (one per mirror URL, used by one signer process at a time
    under a lock), so each signature fetches only what is new since the last one.
    """

    def __init__(self, remote: str, path: str) -> None:
        self.remote = resolve_remote(remote)
        self.path = path
        try:
            pygit2.Repository(self.path)
        except (pygit2.GitError, KeyError):
            shutil.rmtree(self.path, ignore_errors=True)  # absent, or not a repository any more
            pygit2.init_repository(self.path, bare=True)

    def _git(self, *args: str) -> subprocess.CompletedProcess[str]:
        try:
            return run_git(
                limited(["git", *REMOTE_CONFIG, *args]),
                cwd=self.path,
                env=_git_env(),
                timeout=GIT_TIMEOUT,
            )
        except FileNotFoundError as exc:
            raise NetworkError("git is not installed (needed for --git)") from exc
        except subprocess.TimeoutExpired as exc:
            raise NetworkError(f"git {args[0]} timed out after {GIT_TIMEOUT:.0f} s") from exc

    def fetch(self) -> tuple[pygit2.Repository, pygit2.Commit]:
        """Fetch the mirror's ``main``; the repository (reopened, so new packs are seen) and
        the fetched tip."""
        res = self._git("fetch", "--quiet", "--no-tags", "--", self.remote, f"+{MAIN}:{_TRACKING}")
        if res.returncode != 0:
            raise NetworkError(f"Cannot fetch main from the mirror: {_git_failure(res.stderr)}")
        repo = pygit2.Repository(self.path)
        tip = repo.revparse_single(_TRACKING).peel(pygit2.Commit)
        self._verify(repo, str(tip.id))
        return repo, tip

    def _verify(self, repo: pygit2.Repository, tip: str) -> None:
        """Replay what is new since the tip verified last time (all of it the first time)
        before anything is signed on top of it, as ``--mirror`` does: a hostile server cannot
        put other bytes at the path the signer named, or roll back what was seen before."""
        from ..replication.replay import verify_since

        verified = repo.references.get(VERIFIED_REF)
        known = None if verified is None else str(verified.target)
        if known == tip:
            return
        # git takes the empty tree (a mirror's root commit's) as always there, so a dumb-HTTP
        # fetch never brings it; libgit2 does not, and the replay reads it.
        repo.TreeBuilder().write()
        report = verify_since(repo, known, tip)
        if report.bad is not None:
            bad = report.bad
            where = f"commit {bad.commit}" if bad.commit else "its main"
            raise VerificationError(f"Refused the mirror {self.remote}: {where}: {bad.reason}")
        repo.references.create(VERIFIED_REF, pygit2.Oid(hex=tip), force=True)

    def push(self, commit_id: str) -> _PushStatus:
        # --no-verify: a pre-push hook from the user's global config has no say over our commit.
        res = self._git(
            "push", "--porcelain", "--no-verify", "--", self.remote, f"{commit_id}:{MAIN}"
        )
        status = parse_push_output(res.stdout, res.stderr)
        if status is None:
            raise NetworkError(f"Cannot push to the mirror: {push_failure(res.stderr)}")
        return status


@contextlib.contextmanager
def _scratch_clone(remote: str) -> Iterator[ScratchClone]:
    """The cached clone of ``remote`` (locked while in use), or a temporary one when the cache
    directory cannot be written."""
    root = cache_root() / "signing"
    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = open(root / f"{_cache_name(remote)}.lock", "a")  # noqa: SIM115 (held below)
    except OSError:
        with tempfile.TemporaryDirectory(prefix="asfaload-git-") as scratch:
            yield ScratchClone(remote, os.path.join(scratch, "mirror.git"))
        return
    with lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        yield ScratchClone(remote, str(signing_clone_path(remote)))


def signing_clone_path(remote: str) -> Path:
    """The signing clone of ``remote`` in the user's cache: ``<cache>/signing/<key>.git``."""
    return cache_root() / "signing" / f"{_cache_name(remote)}.git"


def _cache_name(remote: str) -> str:
    resolved = resolve_remote(remote)
    key = mirror_key(resolved) if "://" in resolved else resolved
    return hashlib.sha256(key.encode()).hexdigest()[:32]


# --- the submission loop ------------------------------------------------------------------------
def submit_by_git(
    remote: str,
    subject: str,
    build: Callable[[TreeView, int], Op],
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    clock: Callable[[], float] = time.time,
    before_push: Callable[[], None] | None = None,
) -> PushedChange:
    """Fetch, derive the commit of ``build(view, now)`` with the rules, push; retry lost races.

    ``before_push`` runs after the commit is built and before each push (a seam for tests that
    land a concurrent write). Raises the rules' own error when the operation is not derivable
    on the fetched tip, :class:`RuleViolation` with the hook's line when the mirror refuses,
    :class:`ConcurrentUpdateError` when every attempt lost its race, :class:`NetworkError` when
    git cannot talk to the mirror.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    with _scratch_clone(remote) as clone:
        for attempt in range(attempts):
            repo, tip = clone.fetch()
            view = GitTreeView(repo, tip.tree)
            # The hook refuses a committer time before the parent's; the rules use it as "now".
            now = max(int(clock()), tip.commit_time)
            op = build(view, now)
            change = apply(view, op, now)
            tree = apply_change(repo, tip.tree, change)
            who = pygit2.Signature(COMMITTER_NAME, COMMITTER_EMAIL, now, 0)
            commit = str(repo.create_commit(None, who, who, change.message, tree, [tip.id]))
            if before_push is not None:
                before_push()
            status = clone.push(commit)
            if status.ok:
                return PushedChange(commit, change, getattr(op, "subject", subject))
            if not status.lost_race:
                raise RuleViolation(status.reason)
            time.sleep(min(0.05 * (attempt + 1), 0.5))
    raise ConcurrentUpdateError(
        f"The mirror kept changing; nothing was pushed after {attempts} attempts"
    )


def _existing(view: TreeView, path: str) -> bytes:
    data = view.read(path)
    if data is None:
        raise NotFoundError(f"File not found: {path}")
    return data


def signatures_for(
    view: TreeView,
    secret_key: SecretKey,
    subject: str,
    before_sign: BeforeSign | None = None,
) -> AddSignatures:
    """Our signatures over every file of the pending request of ``subject``, as read from
    ``view`` (the exact bytes the hook will hash)."""
    _existing(view, subject)
    req = pending_request(view, subject)
    files: Mapping[str, bytes] = {f: _existing(view, f) for f in req.files}
    signatures = sign_files(secret_key, dict(files), before_sign)
    return AddSignatures(subject, secret_key.public_key, signatures)


def sign_pending_by_git(
    remote: str,
    secret_key: SecretKey,
    file_path: str,
    *,
    attempts: int = DEFAULT_ATTEMPTS,
    clock: Callable[[], float] = time.time,
    before_push: Callable[[], None] | None = None,
    before_sign: BeforeSign | None = None,
    release: bool = False,
) -> PushedChange:
    """Sign the pending request of ``file_path`` and push the derived commit to the mirror.
    ``before_sign`` sees each (path, digest) before it is signed (again on a retry). With
    ``release`` (``file_path`` is a release's index, named by its URL), a signed index whose
    revocation is pending has its revocation signed instead, as over REST."""
    subject = layout.check_path(file_path)

    def what(view: TreeView) -> str:
        if not release or view.read(layout.pending_signatures_path(subject)) is not None:
            return subject
        revocation = layout.pending_revocation_path(subject)
        return revocation if view.read(revocation) is not None else subject

    return submit_by_git(
        remote,
        subject,
        lambda view, _now: signatures_for(view, secret_key, what(view), before_sign),
        attempts=attempts,
        clock=clock,
        before_push=before_push,
    )


def revoke_by_git(
    remote: str,
    secret_key: SecretKey,
    file_path: str,
    *,
    reason: str | None = None,
    attempts: int = DEFAULT_ATTEMPTS,
    clock: Callable[[], float] = time.time,
    before_push: Callable[[], None] | None = None,
) -> PushedChange:
    """Initiate the revocation of the signed file ``file_path`` by pushing the derived commit
    (a signed revocation document, dated with the commit time)."""
    subject = layout.check_path(file_path)

    def build(view: TreeView, now: int) -> Revoke:
        req = build_revocation(secret_key, _existing(view, subject), now=now, reason=reason)
        return Revoke(subject, req.document.raw, req.signature, secret_key.public_key)

    return submit_by_git(
        remote, subject, build, attempts=attempts, clock=clock, before_push=before_push
    )
