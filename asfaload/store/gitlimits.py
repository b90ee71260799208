"""A memory bound on the git programs that read other people's data.

A pushed pack, a fetch from an upstream, a clone's negotiation: git inflates what a stranger
sent, and a few KiB can ask for gigabytes (a delta that copies a large base many times over, a
gzip request body of millions of ``have`` lines). git has no setting for it, so each such program
runs under ``prlimit --data`` (util-linux): its heap and private writable mappings stay under
``ASFALOAD_GIT_MAX_MEMORY`` bytes, and past that it fails as out of memory (a refused push, a
failed fetch) instead of taking the machine down. The packs git maps read-only do not count, so
the bound does not grow with the mirror.

``prlimit`` rather than ``resource.setrlimit`` in a ``preexec_fn``: the server forks from threads,
where running Python between fork and exec may deadlock.
"""

from __future__ import annotations

import os
import shutil

from ..errors import ConfigError

GIT_MAX_MEMORY_ENV = "ASFALOAD_GIT_MAX_MEMORY"
DEFAULT_GIT_MAX_MEMORY = 512 * 1024 * 1024
_MIN_GIT_MEMORY = 64 * 1024 * 1024


def git_max_memory() -> int:
    """``$ASFALOAD_GIT_MAX_MEMORY`` in bytes (at least 64 MiB), else 512 MiB."""
    raw = os.environ.get(GIT_MAX_MEMORY_ENV, "").strip()
    if not raw:
        return DEFAULT_GIT_MAX_MEMORY
    if not raw.isdigit() or int(raw) < _MIN_GIT_MEMORY:
        raise ConfigError(f"Invalid {GIT_MAX_MEMORY_ENV}: give bytes, at least {_MIN_GIT_MEMORY}")
    return int(raw)


def limited(argv: list[str], max_memory: int | None = None) -> list[str]:
    """``argv`` run with its data segment bounded (``max_memory``, else :func:`git_max_memory`).

    ConfigError when ``prlimit`` is missing: running without the bound would be silent.
    """
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        raise ConfigError("prlimit (util-linux) is needed to bound git's memory")
    limit = git_max_memory() if max_memory is None else max_memory
    return [prlimit, f"--data={limit}", "--", *argv]
