"""The mirror repository: reading trees, the single writer (group commit), the pending index."""

from __future__ import annotations

from .gittree import GitTreeView, PathChange, apply_change, diff_trees
from .mirror import INIT_MESSAGE, Mirror, install_hooks
from .pending import PendingIndex, PendingPolicy
from .watch import RefWatcher
from .writer import MAIN, CommitResult

__all__ = [
    "INIT_MESSAGE",
    "MAIN",
    "CommitResult",
    "GitTreeView",
    "Mirror",
    "PathChange",
    "PendingIndex",
    "PendingPolicy",
    "RefWatcher",
    "apply_change",
    "diff_trees",
    "install_hooks",
]
