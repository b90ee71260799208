"""The rules engine's answers to the pending index's questions (a store ``PendingPolicy``).

The index (asfaload.store.pending) only knows "a file changed"; which pending request a path
belongs to, and who may still sign it, are decided here with the rules engine's read side.
"""

from __future__ import annotations

from collections.abc import Iterable

from .. import layout
from ..errors import AsfaloadError
from ..rules import queries
from ..rules.tree import TreeView


class RulesPendingPolicy:
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
        located = _signers_location(path)
        if located is not None and not located[1]:
            # The active signers file changed: every request of the project may have new
            # authorised or missing signers.
            return [located[0] + "/"]
        return []


def _signers_location(path: str) -> tuple[str, bool] | None:
    """``(project, pending)`` for any file directly inside a project's signers dir."""
    try:
        return layout.signers_project_of(path)
    except AsfaloadError:
        return None
