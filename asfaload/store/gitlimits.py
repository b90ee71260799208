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

import contextlib
import os
import re
import shutil
import signal
import subprocess
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError, FormatError

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


# Transports git may use to reach a remote we were given: ext:: and fd:: would run commands
# named by the URL.
REMOTE_PROTOCOLS = ("file", "http", "https", "ssh", "git")
# For every git command that talks to a remote: only those transports, and an HTTP transfer
# that stays under 1 byte/s for a minute is abandoned (a silent server never holds it).
REMOTE_CONFIG: tuple[str, ...] = (
    "-c",
    "protocol.allow=never",
    *(arg for proto in REMOTE_PROTOCOLS for arg in ("-c", f"protocol.{proto}.allow=always")),
    "-c",
    "http.lowSpeedLimit=1",
    "-c",
    "http.lowSpeedTime=60",
)


def run_git(
    argv: list[str],
    *,
    timeout: float,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """``argv`` (a bounded git command, see :func:`limited`) to completion, text output
    captured. On ``timeout`` its whole process group is killed, not git alone (its
    ``git-remote-http`` would live on, holding the connection), and TimeoutExpired is raised."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        proc.communicate()
        raise
    except BaseException:
        kill_group(proc)
        raise
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def kill_group(proc: subprocess.Popen[Any]) -> None:
    """SIGKILL ``proc`` and the processes of its session (started with
    ``start_new_session=True``)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()
    proc.wait()


_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def is_remote_url(spec: str) -> bool:
    """``scheme://…``: a remote to fetch (anything else names a local path, or is scp-like)."""
    return _SCHEME.match(spec) is not None


def check_remote(spec: str, what: str) -> bool:
    """Refuse a remote location git would take for an option (``--upload-pack=…``, which runs
    a command), a command-running transport (``ext::``, ``fd::``), a scheme outside
    :data:`REMOTE_PROTOCOLS` or a port that is no port; FormatError names it as ``what``.
    True when ``spec`` is a URL, False when it names something else (a path, scp-like)."""
    if not spec or any(c in spec for c in "\0\n\r"):
        raise FormatError(f"Invalid {what}")
    if spec.startswith("-"):
        raise FormatError(f"Invalid {what} (it looks like an option)")
    m = _SCHEME.match(spec)
    if m is None:
        if "::" in spec:
            raise FormatError(f"Unsupported {what} (remote helpers are not allowed)")
        return False
    if m.group(1).lower() not in REMOTE_PROTOCOLS:
        raise FormatError(f"Unsupported {what} scheme: {m.group(1)}")
    try:
        urlsplit(spec).port  # noqa: B018 (raises for a port that is no port)
    except ValueError:
        raise FormatError(f"Invalid {what}: bad port") from None
    return True


def plain_netloc(url: str) -> str | None:
    """``host[:port]`` of ``url`` without its credentials (an IPv6 host in brackets; urlsplit
    lower-cases it); None when it has no host, or a port that is no port."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname:
        return None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return host if port is None else f"{host}:{port}"
