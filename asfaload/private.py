"""Owner-only files and directories under the server's ``private/`` directory.

Everything there (nonces, TUF users, online keys, tasks, app settings, the pending index) is
the server's user's alone: files 0600, directories 0700, whatever the process umask. The
modes are given at creation, not fixed afterwards, so no other user can open a file in the
window between the two; a file or directory an older version left readable is tightened when
it is next opened.
"""

from __future__ import annotations

import os
from contextlib import suppress
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700
# SQLite's companions of a database file. It creates them with the database file's mode, but
# one left behind by an older version keeps its own.
_SQLITE_SUFFIXES = ("-wal", "-shm", "-journal")


def private_dirs(path: Path, base: Path) -> Path:
    """Make ``base`` and every directory from it down to ``path`` an 0700 directory.

    ``Path.mkdir(parents=True, mode=...)`` gives the mode to the last directory only, and the
    umask may mask owner bits too.
    """
    path, base = Path(path), Path(base)
    if path != base and base not in path.parents:
        raise ValueError(f"{path} is not under {base}")
    dirs = [base]
    for part in path.relative_to(base).parts:
        dirs.append(dirs[-1] / part)
    for current in dirs:
        with suppress(FileExistsError):
            current.mkdir(mode=DIR_MODE)
        if current.stat().st_mode & 0o777 != DIR_MODE:
            os.chmod(current, DIR_MODE)
    return path


def private_file(path: Path) -> int:
    """Open ``path`` read-write, created 0600 if missing (an existing one is set to 0600);
    the caller closes the descriptor."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    try:
        if os.fstat(fd).st_mode & 0o777 != FILE_MODE:
            os.fchmod(fd, FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    return fd


def private_sqlite(path: Path) -> Path:
    """Make ``path`` ready for ``sqlite3.connect``: the database file exists with mode 0600,
    so that SQLite creates its -wal, -shm and -journal files 0600 too."""
    os.close(private_file(path))
    for suffix in _SQLITE_SUFFIXES:
        companion = path.with_name(path.name + suffix)
        with suppress(FileNotFoundError):
            if companion.stat().st_mode & 0o777 != FILE_MODE:
                os.chmod(companion, FILE_MODE)
    return path
