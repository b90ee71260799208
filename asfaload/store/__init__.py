"""The mirror repository: reading trees, the single writer (group commit), the pending index.

Names are resolved lazily: the pre-receive hook needs only the tree helpers, and every push
pays for what it imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .durable import WriterLock, lock_path_for
    from .gittree import MAIN, GitTreeView, PathChange, apply_change, diff_trees
    from .mirror import INIT_MESSAGE, Mirror, install_hooks
    from .pending import PendingIndex, PendingPolicy
    from .watch import RefWatcher
    from .writer import CommitResult

_WHERE = {
    **dict.fromkeys(("MAIN", "GitTreeView", "PathChange", "apply_change", "diff_trees"), "gittree"),
    **dict.fromkeys(("INIT_MESSAGE", "Mirror", "install_hooks"), "mirror"),
    **dict.fromkeys(("PendingIndex", "PendingPolicy"), "pending"),
    "RefWatcher": "watch",
    "CommitResult": "writer",
    **dict.fromkeys(("WriterLock", "lock_path_for"), "durable"),
}

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
    "WriterLock",
    "apply_change",
    "diff_trees",
    "install_hooks",
    "lock_path_for",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'asfaload.store' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
