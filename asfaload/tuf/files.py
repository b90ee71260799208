"""Owner-only files under the server's ``<private>/tuf`` (users, online keys, app settings) and
the CLI's token file: created atomically, never world-readable, never half-written."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from ..errors import StoreError
from ..private import private_dirs, private_file, private_sqlite

__all__ = [
    "private_dirs",
    "private_file",
    "private_sqlite",
    "tuf_private_dir",
    "write_private",
]


def tuf_private_dir(private_dir: Path) -> Path:
    """``<private>/tuf``, created owner-only on first use."""
    base = Path(private_dir) / "tuf"
    if not base.is_dir():
        try:
            private_dirs(base, base.parent)
        except OSError as exc:
            # A server answers this as a plain 500; the CLI prints it as one line.
            raise StoreError(f"Cannot create {base}: {exc.strerror}") from None
    return base


def write_private(path: Path, data: bytes, *, replace: bool = True) -> None:
    """Write ``path`` (mode 0600) through a unique temp file, fsync and rename, so readers see
    the old or the new content, never a mix. With ``replace=False`` an existing file is never
    overwritten (FileExistsError)."""
    # mkstemp: a unique name (threads of one process may write the same file) and mode 0600.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)
            os.unlink(tmp)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
