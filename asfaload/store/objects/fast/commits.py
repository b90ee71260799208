"""The writer's commit objects, formatted as bytes."""

from __future__ import annotations

import pygit2

from ....errors import StoreError
from ..identity import AUTHOR_EMAIL, AUTHOR_NAME


def commit_bytes(tree: pygit2.Oid, parent: pygit2.Oid, when: int, message: str) -> bytes:
    """The writer's commit object, byte for byte as libgit2's ``create_commit`` writes it with
    :func:`~..identity.committer` (a test compares the two): a string format here, where
    libgit2 costs a call, a parse of its arguments and a callback into the writer's object
    backend."""
    if "\0" in message:
        raise StoreError("A commit message cannot hold a NUL byte")
    ident = f"{AUTHOR_NAME} <{AUTHOR_EMAIL}> {int(when)} +0000"
    return f"tree {tree}\nparent {parent}\nauthor {ident}\ncommitter {ident}\n\n{message}".encode()
