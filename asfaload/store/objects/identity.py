"""Who the writer's commits name: the same author and committer whichever store writes them."""

from __future__ import annotations

import pygit2

AUTHOR_NAME = "asfaload"
AUTHOR_EMAIL = "asfaload@localhost"


def committer(when: int) -> pygit2.Signature:
    return pygit2.Signature(AUTHOR_NAME, AUTHOR_EMAIL, when, 0)
