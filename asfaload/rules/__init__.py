"""The pure rules engine: every change to the mirror is decided here (no I/O).

Public API (see ``docs/architecture.md`` "rules engine API"):

- ``apply(view, op, now) -> Change`` (:mod:`.engine`), operations (:mod:`.ops`): ``Register``,
  ``ProposeUpdate``, ``RegisterRelease``, ``AddSignatures``, ``Revoke`` — each also callable as
  ``op(view, now)``, i.e. a store ``Operation``.
- read side (:mod:`.queries`): ``find_project``, ``governing_signers``,
  ``governing_signers_path``, ``pending_request``, ``who_may_sign``, ``missing_signers``,
  ``required_signers``, ``can_sign``, ``file_status``, ``FileStatus``, ``RequestKind``.
- push (:mod:`.push`): ``infer_operation(parent_view, pushed_change)``,
  ``check_push(parent_view, pushed_change, commit_time) -> op`` for the pre-receive hook.
- :mod:`.tree`: ``TreeView``, ``Change``, ``DictTree``, ``OverlayTree``, ``Operation``.

Names are resolved lazily so that importing ``asfaload.rules.tree`` (which the store does) never
pulls in the engine and its model dependencies.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .engine import apply
    from .ops import AddSignatures, Op, ProposeUpdate, Register, RegisterRelease, Revoke
    from .push import check_push, derive_push, infer_operation
    from .queries import (
        FileStatus,
        PendingRequest,
        RequestKind,
        can_sign,
        file_status,
        find_project,
        governing_signers,
        governing_signers_path,
        missing_signers,
        pending_request,
        required_signers,
        who_may_sign,
    )
    from .tree import Change, DictTree, Operation, OverlayTree, TreeView

_WHERE = {
    "apply": "engine",
    **dict.fromkeys(
        ("AddSignatures", "Op", "ProposeUpdate", "Register", "RegisterRelease", "Revoke"), "ops"
    ),
    **dict.fromkeys(
        (
            "FileStatus",
            "PendingRequest",
            "RequestKind",
            "can_sign",
            "file_status",
            "find_project",
            "governing_signers",
            "governing_signers_path",
            "missing_signers",
            "pending_request",
            "required_signers",
            "who_may_sign",
        ),
        "queries",
    ),
    **dict.fromkeys(("Change", "DictTree", "Operation", "OverlayTree", "TreeView"), "tree"),
    **dict.fromkeys(("check_push", "derive_push", "infer_operation"), "push"),
}

__all__ = [
    "AddSignatures",
    "Change",
    "DictTree",
    "FileStatus",
    "Op",
    "Operation",
    "OverlayTree",
    "PendingRequest",
    "ProposeUpdate",
    "Register",
    "RegisterRelease",
    "RequestKind",
    "Revoke",
    "TreeView",
    "apply",
    "can_sign",
    "check_push",
    "derive_push",
    "file_status",
    "find_project",
    "governing_signers",
    "governing_signers_path",
    "infer_operation",
    "missing_signers",
    "pending_request",
    "required_signers",
    "who_may_sign",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'asfaload.rules' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)
