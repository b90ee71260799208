"""Git hooks of the mirror repository (installed by ``Mirror.init``, run by ``git receive-pack``).

``python -m asfaload.hooks pre-receive`` validates a push with the rules engine;
``python -m asfaload.hooks post-update`` refreshes the dumb-HTTP info files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

USAGE = "usage: python -m asfaload.hooks {pre-receive|post-update}"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args:
        print(USAGE, file=sys.stderr)
        return 2
    if args[0] == "pre-receive":
        from .prereceive import run

        status, line = run(sys.stdin.read())
        if line:
            # git relays hook output to the pusher as "remote: ..." lines: exactly one line.
            print(line, file=sys.stderr)
        return status
    if args[0] == "post-update":
        # Kept import-free: it runs after every accepted push.
        subprocess.run(
            ["git", "update-server-info"], cwd=os.environ.get("GIT_DIR", "."), check=False
        )
        return 0
    print(USAGE, file=sys.stderr)
    return 2
