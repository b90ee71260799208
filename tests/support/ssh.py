"""Keys made by the real ``ssh-keygen`` (Debian's openssh-client), for the OpenSSH key tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path


def ssh_keygen(directory: Path, name: str, *args: str, passphrase: str = "") -> Path:
    """``ssh-keygen -t … -N passphrase -f directory/name``; returns the private key path (the
    public key is beside it, ``name.pub``)."""
    exe = shutil.which("ssh-keygen")
    assert exe, "ssh-keygen must be installed (apt-get install openssh-client)"
    path = directory / name
    res = subprocess.run(
        [exe, "-q", "-N", passphrase, "-C", f"{name}@example", "-f", str(path), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    return path
