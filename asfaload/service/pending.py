"""The rules engine's answers to the pending index's questions (a store ``PendingPolicy``).

The index (asfaload.store.pending) only knows "a file changed"; which pending request a path
belongs to, and who may still sign it, are decided here with the rules engine's read side.
Subjects are what ``list-pending`` prints and ``sign-pending`` takes: a release index, a
pending signers file (its metadata is signed with it), a pending revocation.
"""

from __future__ import annotations

from collections.abc import Iterable

from .. import layout
from ..errors import AsfaloadError
from ..rules import queries
from ..rules.tree import TreeView


class RulesPendingPolicy:
    """The pending policy of the real mirror, asking the rules engine."""

    def subject_of(self, path: str) -> str | None:
        located = _signers_location(path)
        if located is not None:
            project, pending = located
            # Every file of a pending signers dir (signers file, metadata, their pending
            # signatures, the kind sidecar) belongs to the one request of the signers file.
            return layout.signers_file_path(project, pending=True) if pending else None
        if path.endswith(layout.PENDING_SIGNATURES_SUFFIX):
            try:
                return layout.subject_of_pending_signatures(path)
            except AsfaloadError:
                return None
        return None

    def missing_signers(self, view: TreeView, subject: str) -> Iterable[str] | None:
        try:
            queries.pending_request(view, subject)
        except AsfaloadError:
            return None
        return queries.required_signers(view, subject)

    def affected_prefixes(self, path: str) -> Iterable[str]:
        # Siblings share a subject's state files (X.signatures.json, X.revocation.json, ...);
        # a change in either signers dir or the history re-decides who may sign anything in
        # the project.
        out = [layout.parent(path) + "/"] if "/" in path else [""]
        located = _signers_location(path)
        if located is not None:
            out.append(located[0] + "/")
        elif layout.basename(path) == layout.HISTORY_FILE and "/" in path:
            out.append(layout.parent(path) + "/")
        return out


def _signers_location(path: str) -> tuple[str, bool] | None:
    """``(project, pending)`` for any file directly inside a project's signers dir."""
    try:
        return layout.signers_project_of(path)
    except AsfaloadError:
        return None
