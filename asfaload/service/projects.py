"""What the web pages show: the projects of a mirror, and one project at a glance.

Finding the projects. Nothing in the mirror lists them and the pending index knows only open
requests, so :class:`ProjectLister` walks the tree from the root down to the project markers
(``P/asfaload.signers.history.json``) and never below one: projects never nest, so a walk stops
at each project root and visits only the directories of project ids (``<scheme>/<host>/<port>/
…``), never a project's releases. Each directory's answer is memoised by its git tree id, which
changes only when something below it changes: at an unchanged tip the walk is one memo hit, and
after a commit it re-reads only the directories on the changed paths.

A project's page reads that project's subtree once (its release indexes), and every state on it
comes from :func:`asfaload.rules.status.file_report`, as the API's.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

import pygit2

from .. import layout
from ..crypto import PublicKey, sha512
from ..errors import AsfaloadError, NotFoundError
from ..model import SignerGroup, SignersFile
from ..model.history import SignersHistory
from ..model.index import PublishedFile, ReleaseIndex
from ..model.metadata import SignersMetadata
from ..model.signers import GROUP_NAMES
from ..rules import queries
from ..rules.groups import valid_signers
from ..rules.status import FileReport, file_report
from ..rules.tree import TreeView

# Only these top-level names can start a project id (docs/formats.md, "Project ids").
PROJECT_SCHEMES = ("http", "https")


class ProjectLister:
    """The project ids of a mirror's tree, memoised per git tree id (thread-safe)."""

    def __init__(self, repo_path: str, memo_size: int = 4096) -> None:
        self._repo_path = repo_path
        self._memo: OrderedDict[pygit2.Oid, tuple[str, ...]] = OrderedDict()
        self._memo_size = memo_size
        self._lock = threading.Lock()
        self._local = threading.local()

    @property
    def _repo(self) -> pygit2.Repository:
        repo: pygit2.Repository | None = getattr(self._local, "repo", None)
        if repo is None:
            repo = pygit2.Repository(self._repo_path)
            self._local.repo = repo
        return repo

    def projects(self, commit: str | None) -> list[str]:
        """Sorted project ids in the tree of ``commit`` (none for None)."""
        if commit is None:
            return []
        root = self._repo[commit].peel(pygit2.Tree)
        out: list[str] = []
        for entry in root:
            if entry.name in PROJECT_SCHEMES and entry.type_str == "tree":
                out.extend(f"{entry.name}/{p}" for p in self._under(entry.id))
        return sorted(out)

    def _under(self, oid: pygit2.Oid) -> tuple[str, ...]:
        """Project roots below the tree ``oid``, relative to it ('' when it is one)."""
        with self._lock:
            hit = self._memo.get(oid)
            if hit is not None:
                self._memo.move_to_end(oid)
                return hit
        tree = self._repo[oid].peel(pygit2.Tree)
        names = {e.name for e in tree}
        if layout.HISTORY_FILE in names and _is_blob(tree[layout.HISTORY_FILE]):
            found: tuple[str, ...] = ("",)
        else:
            roots: list[str] = []
            for entry in tree:
                if entry.type_str != "tree":
                    continue
                roots.extend(
                    f"{entry.name}/{r}" if r else str(entry.name) for r in self._under(entry.id)
                )
            found = tuple(roots)
        with self._lock:
            self._memo[oid] = found
            if len(self._memo) > self._memo_size:
                self._memo.popitem(last=False)
        return found


def _is_blob(obj: pygit2.Object) -> bool:
    return obj.type_str == "blob"


# --- one project -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SignersView:
    """A signers file as the page shows it: its groups as written, and its state."""

    path: str
    timestamp: str
    groups: tuple[tuple[str, SignerGroup], ...]
    source_url: str | None
    report: FileReport | None
    error: str | None


@dataclass(frozen=True)
class ReleaseView:
    path: str
    label: str
    published_on: str | None
    files: tuple[PublishedFile, ...]
    report: FileReport | None
    error: str | None


@dataclass(frozen=True)
class HistoryView:
    obsoleted_at: str
    timestamp: str
    groups: tuple[tuple[str, SignerGroup], ...]
    signed: tuple[PublicKey, ...]


@dataclass(frozen=True)
class ProjectOverview:
    project_id: str
    history_path: str
    active: SignersView | None
    pending: SignersView | None
    releases: tuple[ReleaseView, ...]
    history: tuple[HistoryView, ...]

    @property
    def revocations(self) -> tuple[ReleaseView, ...]:
        """Releases revoked or with a revocation collecting signatures."""
        return tuple(r for r in self.releases if r.report and r.report.revocation is not None)


def _groups(signers: SignersFile) -> tuple[tuple[str, SignerGroup], ...]:
    return tuple((name, g) for name in GROUP_NAMES for g in getattr(signers, name) or ())


def _report(view: TreeView, path: str) -> tuple[FileReport | None, str | None]:
    try:
        return file_report(view, path), None
    except AsfaloadError as exc:
        return None, str(exc)


def _signers_view(view: TreeView, project: str, *, pending: bool) -> SignersView | None:
    path = layout.signers_file_path(project, pending=pending)
    raw = view.read(path)
    if raw is None:
        return None
    report, error = _report(view, path)
    try:
        signers = queries.parse_signers(raw)
    except AsfaloadError as exc:
        return SignersView(path, "", (), None, report, error or str(exc))
    source = None
    meta = view.read(layout.metadata_path(project, pending=pending))
    if meta is not None:
        try:
            source = SignersMetadata.from_bytes(meta).url
        except AsfaloadError:
            source = None
    return SignersView(path, signers.timestamp, _groups(signers), source, report, error)


def _index_paths(view: TreeView, directory: str) -> list[str]:
    out: list[str] = []
    for name in view.listdir(directory):
        if name in (layout.SIGNERS_DIR, layout.PENDING_SIGNERS_DIR):
            continue
        path = layout.join(directory, name)
        if name == layout.INDEX_FILE and view.read(path) is not None:
            out.append(path)
        elif view.read(path) is None:
            out.extend(_index_paths(view, path))
    return out


def _release_view(view: TreeView, project: str, path: str) -> ReleaseView:
    label = layout.parent(path)[len(project) + 1 :] or "."
    report, error = _report(view, path)
    raw = view.read(path)
    assert raw is not None
    try:
        index = ReleaseIndex.from_bytes(raw)
    except AsfaloadError as exc:
        return ReleaseView(path, label, None, (), report, error or str(exc))
    return ReleaseView(path, label, index.published_on, index.published_files, report, error)


def _history(view: TreeView, project: str) -> tuple[HistoryView, ...]:
    history = SignersHistory.from_bytes(view.read(layout.history_path(project)) or b"")
    out: list[HistoryView] = []
    for e in history.entries:
        on_file = valid_signers(e.signatures, sha512(e.signers_file.raw))
        on_meta = valid_signers(e.metadata_signatures, sha512(e.metadata.raw))
        out.append(
            HistoryView(
                obsoleted_at=e.obsoleted_at,
                timestamp=e.signers_file.timestamp,
                groups=_groups(e.signers_file),
                signed=tuple(sorted(on_file & on_meta, key=str)),
            )
        )
    return tuple(out)


def project_overview(view: TreeView, project: str) -> ProjectOverview:
    """Everything the project page shows; NotFoundError unless ``project`` is a project root."""
    try:
        layout.check_path(project)
    except AsfaloadError:
        raise NotFoundError(f"No such project: {project}") from None
    if queries.find_project(view, project) != project:
        raise NotFoundError(f"No such project: {project}")
    releases = tuple(_release_view(view, project, p) for p in sorted(_index_paths(view, project)))
    return ProjectOverview(
        project_id=project,
        history_path=layout.history_path(project),
        active=_signers_view(view, project, pending=False),
        pending=_signers_view(view, project, pending=True),
        releases=releases,
        history=_history(view, project),
    )
