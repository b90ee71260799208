"""What both object stores leave to git's own command line."""

from __future__ import annotations

import subprocess


def update_server_info(repo_path: str) -> None:
    """Refresh info/refs and objects/info/packs so dumb-HTTP clones see the new tip."""
    subprocess.run(
        ["git", "update-server-info"],
        cwd=repo_path,
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
