"""Git over HTTP at ``/mirror.git``: git's own ``git http-backend``, run as a CGI program.

Every server serves its mirror this way: smart HTTP (clone, fetch, shallow and partial clones,
protocol v2) and the dumb-HTTP files, for everyone and without an account. On the primary a
``git push`` needs no credentials either: the pre-receive hook the mirror carries is the only
gate (the signature is the credential). A read-only mirror refuses pushes with a message that
names the primary it follows.

What must hold:

- Nothing is held whole in memory: a push body over 1 MiB reaches the app spooled to an unnamed
  temporary file by the front (at most ``git_max_concurrent`` per worker; more get 503), it is
  fed to git from there, and the response streams out as git writes it.
- Git traffic cannot starve the REST API: each worker runs at most ``git_max_concurrent`` git
  programs at once (others wait a little, then get 503), each program is killed after
  ``git_timeout`` seconds, and a push body is capped at ``git_max_push_bytes`` (besides
  ``receive.maxInputSize`` in the mirror's own config).
- The program sees a small fixed environment: no server secrets, and none of the host's git
  configuration (``GIT_CONFIG_NOSYSTEM``, ``GIT_CONFIG_GLOBAL``).
- It runs under a memory bound (:mod:`asfaload.store.gitlimits`): a small pack or request body
  that inflates to gigabytes makes git fail, not the machine.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, cast

from flask import Blueprint, Response, request, stream_with_context

from ..errors import AsfaloadError, NotFoundError
from ..replication.sync import read_only_refusal
from ..store.gitlimits import limited
from .config import APP_THREADS
from .context import state

log = logging.getLogger("asfaload.server.git")

git_blueprint = Blueprint("git", __name__)

MOUNT = "/mirror.git"
_CHUNK = 64 * 1024
_RECEIVE_PACK = "git-receive-pack"


class GitBusyError(AsfaloadError):
    """Too many git requests at once in this worker."""

    http_status = 503


class PushTooLargeError(AsfaloadError):
    """A push body over the server's cap."""

    http_status = 413


class _Slots:
    """The per-worker bound on concurrent git programs, and on the app threads git requests
    hold: a request waiting for a program waits in an app thread, so past ``admitted`` git
    requests in this worker the next is answered 503 at once, and at least half the threads stay
    free for the REST API however many git clients come."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sem: threading.BoundedSemaphore | None = None
        self._inside = 0

    def semaphore(self, size: int) -> threading.BoundedSemaphore:
        with self._lock:
            if self._sem is None:
                self._sem = threading.BoundedSemaphore(size)
            return self._sem

    @staticmethod
    def admitted(size: int) -> int:
        """Git requests one worker holds at once: its ``size`` programs, and as many waiting
        as fit in half of its app threads."""
        return max(size, min(2 * size, APP_THREADS // 2))

    def enter(self, size: int) -> bool:
        with self._lock:
            if self._inside >= self.admitted(size):
                return False
            self._inside += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._inside -= 1


_slots = _Slots()


def _pkt(line: str) -> bytes:
    data = line.encode()
    return f"{len(data) + 4:04x}".encode() + data


def refuse_push_response(message: str) -> Response:
    """The answer to a push's ref discovery on a server that takes no pushes.

    git shows an ``ERR`` packet of the advertisement as ``fatal: remote error: <message>``,
    where an HTTP error status would only show the status line.
    """
    body = _pkt(f"# service={_RECEIVE_PACK}\n") + b"0000" + _pkt(f"ERR {message}")
    return Response(
        body,
        status=200,
        content_type=f"application/x-{_RECEIVE_PACK}-advertisement",
        headers={"Cache-Control": "no-cache"},
    )


def _plain_path(rest: str) -> bool:
    """A path git http-backend is asked about: no control characters (a NUL cannot even reach
    its environment), no empty, ``.`` or ``..`` segment (which it refuses with an empty 500)."""
    if any(ord(c) < 0x20 or c == "\x7f" for c in rest):
        return False
    return not rest or all(part not in ("", ".", "..") for part in rest.split("/"))


def _is_push(rest: str) -> bool:
    return rest == _RECEIVE_PACK or (
        rest == "info/refs" and request.args.get("service") == _RECEIVE_PACK
    )


def _cgi_environ(repo: Path, rest: str, *, allow_push: bool, max_push_bytes: int) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C",
        "HOME": str(repo),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_PROJECT_ROOT": str(repo.parent),
        "GIT_HTTP_EXPORT_ALL": "1",
        "GIT_USER_AGENT": "git/asfaload",  # the advertised agent, without git's version
        "PATH_INFO": f"/{repo.name}/{rest}" if rest else f"/{repo.name}",
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": request.query_string.decode("latin-1"),
        "REMOTE_ADDR": request.remote_addr or "",
        "SERVER_PROTOCOL": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
        # Per-invocation configuration (git >= 2.31): the service switches and partial clone.
        "GIT_CONFIG_COUNT": "3",
        "GIT_CONFIG_KEY_0": "http.receivepack",
        "GIT_CONFIG_VALUE_0": "true" if allow_push else "false",
        "GIT_CONFIG_KEY_1": "uploadpack.allowFilter",
        "GIT_CONFIG_VALUE_1": "true",
        "GIT_CONFIG_KEY_2": "receive.maxInputSize",
        "GIT_CONFIG_VALUE_2": str(max_push_bytes),
    }
    for header, var in (
        ("Content-Type", "CONTENT_TYPE"),
        ("Content-Length", "CONTENT_LENGTH"),
        ("Content-Encoding", "HTTP_CONTENT_ENCODING"),
        ("Git-Protocol", "GIT_PROTOCOL"),
    ):
        value = request.headers.get(header)
        if value:
            env[var] = value
    return env


def _feed(body: IO[bytes], stdin: IO[bytes], cap: int, proc: subprocess.Popen[bytes]) -> None:
    """Copy the request body into git's stdin; kill git if the body passes ``cap``."""
    total = 0
    try:
        while True:
            chunk = body.read(_CHUNK)
            if not chunk:
                break
            total += len(chunk)
            if total > cap:
                log.warning("git request body over %d bytes: refused", cap)
                proc.kill()
                return
            stdin.write(chunk)
    except (OSError, ValueError):
        proc.kill()  # git went away, or the client did: neither half can finish
    finally:
        with contextlib.suppress(OSError):
            stdin.close()


def _drain_stderr(stream: IO[bytes]) -> None:
    for line in stream:
        log.info("git http-backend: %s", line.decode("utf-8", "replace").rstrip()[:500])


def _read_cgi_headers(stdout: IO[bytes]) -> tuple[int, list[tuple[str, str]]]:
    status = 200
    headers: list[tuple[str, str]] = []
    while True:
        line = stdout.readline(8192)
        if not line:
            raise ConnectionError("git http-backend ended before its headers")
        text = line.decode("latin-1").rstrip("\r\n")
        if not text:
            return status, headers
        name, _, value = text.partition(":")
        value = value.strip()
        if name.lower() == "status":
            status = int(value.split()[0])
        else:
            headers.append((name, value))


def serve_git(
    repo: Path,
    rest: str,
    *,
    allow_push: bool,
    max_push_bytes: int,
    timeout: float,
    max_concurrent: int,
) -> Response:
    """Run ``git http-backend`` for one request and stream its answer."""
    sem = _slots.semaphore(max_concurrent)
    if not _slots.enter(max_concurrent):
        raise GitBusyError("Too many git requests at once; try again shortly")
    if not sem.acquire(timeout=10):
        _slots.leave()
        raise GitBusyError("Too many git requests at once; try again shortly")

    def release_both() -> None:
        sem.release()
        _slots.leave()

    release = _Once(release_both)
    try:
        length = request.content_length
        if length is not None and length > max_push_bytes:
            raise PushTooLargeError(f"Request body over the {max_push_bytes}-byte limit")
        proc = subprocess.Popen(
            limited(["git", "http-backend"]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_cgi_environ(repo, rest, allow_push=allow_push, max_push_bytes=max_push_bytes),
            close_fds=True,
            start_new_session=True,  # a kill reaches upload-pack and pack-objects too
        )
    except BaseException:
        release()
        raise
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    timer = threading.Timer(timeout, _kill_all, args=(proc,))
    timer.daemon = True
    timer.start()
    threading.Thread(target=_drain_stderr, args=(proc.stderr,), daemon=True).start()
    body = request.environ["wsgi.input"] if request.method == "POST" else None
    if body is not None:
        feeder = threading.Thread(
            target=_feed, args=(body, proc.stdin, max_push_bytes, proc), daemon=True
        )
        feeder.start()
    else:
        proc.stdin.close()

    stdout = cast(io.BufferedReader, proc.stdout)

    def finish(ended: bool) -> None:
        # After git's last byte, let it finish (a push's post-update hook may still run);
        # a client gone mid-stream, or an error, ends it at once.
        if ended:
            proc.wait()  # blocking, not polling: the timer still kills a git that hangs
        timer.cancel()
        if proc.poll() is None:
            _kill_all(proc)
        proc.wait()
        stdout.close()
        release()

    try:
        status, headers = _read_cgi_headers(stdout)
    except (ConnectionError, ValueError):
        finish(False)
        raise AsfaloadError("git could not answer this request") from None

    def stream() -> Iterator[bytes]:
        ended = False
        try:
            while True:
                chunk = stdout.read1(_CHUNK)
                if not chunk:
                    ended = True
                    break
                yield chunk
        finally:
            finish(ended)

    resp = Response(stream_with_context(stream()), status=status, direct_passthrough=True)
    for name, value in headers:
        resp.headers[name] = value
    return resp


def _kill_all(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``git http-backend`` and the git programs it started (its session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        proc.kill()


class _Once:
    """Releases a slot once, whichever of the error path and the stream's end comes first."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self._fn = fn
        self._done = False
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            if self._done:
                return
            self._done = True
        self._fn()


@git_blueprint.route(MOUNT, defaults={"rest": ""}, methods=["GET", "HEAD", "POST"])
@git_blueprint.route(f"{MOUNT}/<anypath:rest>", methods=["GET", "HEAD", "POST"])
def git_http(rest: str) -> Response:
    if not _plain_path(rest):
        raise NotFoundError("No such git resource")
    st = state()
    cfg = st.config
    if _is_push(rest) and cfg.read_only:
        return refuse_push_response(
            read_only_refusal(str(cfg.mirror_path), "push signatures", cfg.primary_url)
        )
    return serve_git(
        cfg.mirror_path,
        rest,
        allow_push=not cfg.read_only,
        max_push_bytes=cfg.git_max_push_bytes,
        timeout=cfg.git_timeout,
        max_concurrent=cfg.git_max_concurrent,
    )
