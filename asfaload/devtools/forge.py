"""A local forge emulator: a real threaded HTTP server on loopback for tests, the demo, and people
trying asfaload on a laptop (``asfaload dev forge``).

It plays github.com, raw.githubusercontent.com, api.github.com, gitlab.com and a plain file
server, all on one port, each under its own path prefix; :meth:`ForgeEmulator.rewrites` returns the
``ASFALOAD_URL_REWRITES`` value that sends the real forge URLs here. Everything it serves is a file
under ``root`` (so tests can tamper with an asset at run time), except the release API answers,
which are derived from the release directories on each request:

- ``/raw/<o>/<r>/<ref>/<path>``                 GitHub raw files   (``root/raw/...``)
- ``/gh/<o>/<r>/releases/download/<tag>/<name>`` GitHub assets      (``root/gh/...``)
- ``/api/repos/<o>/<r>/releases/tags/<tag>``    GitHub release JSON
- ``/gl/<ns…>/<p>/-/raw/<ref>/<path>``           GitLab raw files   (``root/gl/...``)
- ``/gl/<ns…>/<p>/-/releases/<tag>/downloads/<name>`` GitLab assets
- ``/gl/api/v4/projects/<id>/releases/<tag>``   GitLab release JSON
- ``/files/<path>``                             file server        (``root/files/...``)

Files are streamed from disk (``sendfile``) and single ``Range`` requests are honoured, so a
multi-GiB asset costs no memory. Tests can inject failures (status + ``Retry-After``), redirects
and slow (dripping) responses per path, and count the requests a path received.

Run standalone: ``python -m asfaload.devtools.forge --port 0 --root DIR`` prints one JSON line
``{"port": N, "origin": ..., "rewrites": ...}``; ``PUT /_emu/files/<path>`` writes a file. People
use ``asfaload dev forge``, which prints the environment for the server and the client, and
``asfaload dev publish FILE URL``, which puts a file where the emulator serves ``URL``
(:func:`root_path`).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shlex
import shutil
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

GITHUB = "https://github.com"
GITHUB_RAW = "https://raw.githubusercontent.com"
GITHUB_API = "https://api.github.com"
GITLAB = "https://gitlab.com"
FILESERVER = "https://files.example.com"
PREFIXES = {
    GITHUB: "/gh",
    GITHUB_RAW: "/raw",
    GITHUB_API: "/api",
    GITLAB: "/gl",
    FILESERVER: "/files",
}
DEFAULT_PUBLISHED_AT = "2024-01-01T00:00:00Z"


def served_path(public_url: str) -> str:
    """The path on the emulator a public forge URL is rewritten to (``/gh/…``, ``/raw/…``…)."""
    for public in sorted(PREFIXES, key=len, reverse=True):
        if public_url == public or public_url.startswith(public + "/"):
            return PREFIXES[public] + public_url[len(public) :]
    raise ValueError(f"not an emulated forge URL: {public_url}")


def root_path(public_url: str) -> str:
    """Where, under the emulator's root, a file must be for ``public_url`` to serve it, for the
    URLs people publish at: a repository file as its GitHub or GitLab *blob* page (what
    ``register-repo`` takes), a raw URL, a release asset's download URL, a file-server file.
    A release page is not a file: its assets make it (the release API lists its directory)."""
    url = public_url.split("#", 1)[0].split("?", 1)[0]
    if url.startswith(GITHUB + "/"):
        parts = url[len(GITHUB) + 1 :].split("/")
        if len(parts) >= 5 and parts[2] == "blob":
            return "/".join(["raw", parts[0], parts[1], *parts[3:]])
        if len(parts) >= 6 and parts[2:4] == ["releases", "download"]:
            return served_path(url).lstrip("/")
    elif url.startswith(GITLAB + "/") and "/-/" in url:
        project, rest = url[len(GITLAB) + 1 :].split("/-/", 1)
        kind, _, tail = rest.partition("/")
        if kind == "blob" and "/" in tail:
            return f"gl/{project}/-/raw/{tail}"
        if kind in ("raw", "releases") and (kind == "raw" or "/downloads/" in tail):
            return served_path(url).lstrip("/")
    elif url.startswith((GITHUB_RAW + "/", FILESERVER + "/")):
        return served_path(url).lstrip("/")
    raise ValueError(
        f"not a file URL the forge emulator serves: {public_url} (a GitHub or GitLab blob or raw "
        "URL, a release asset download URL, or a https://files.example.com/ file)"
    )


def publish(root: str | os.PathLike[str], public_url: str, data: bytes) -> Path:
    """Write ``data`` where an emulator serving ``root`` answers ``public_url``; no server needs
    to run (it reads its files at each request)."""
    base = Path(root).resolve()
    dest = (base / root_path(public_url)).resolve()
    if base not in dest.parents:
        raise ValueError(f"path escapes the emulator root: {public_url}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp-emu")
    tmp.write_bytes(data)
    os.replace(tmp, dest)
    return dest


def rewrites_for(origin: str) -> str:
    """``ASFALOAD_URL_REWRITES`` sending the emulated forges to an emulator at ``origin``."""
    return ",".join(f"{public}={origin}{prefix}" for public, prefix in PREFIXES.items())


def try_it_env(origin: str, backend_url: str, data_dir: str) -> dict[str, str]:
    """The environment for trying asfaload by hand against an emulator at ``origin``: the same
    for the server and the client (each reads the variables it uses)."""
    # No ASFALOAD_ALLOW_PRIVATE_URLS: a rewrite target is the operator's own setting and is
    # reached although it is on loopback; user URLs that point at private addresses stay refused.
    return {
        "ASFALOAD_URL_REWRITES": rewrites_for(origin),
        "ASFALOAD_DATA_DIR": data_dir,
        "ASFALOAD_BACKEND_URL": backend_url,
    }


def export_lines(env: Mapping[str, str]) -> list[str]:
    """``export NAME=value`` lines a POSIX shell (bash, zsh, dash) reads back as given."""
    return [f"export {name}={shlex.quote(value)}" for name, value in env.items()]


@dataclass
class _Failure:
    status: int
    remaining: int
    retry_after: str | None


@dataclass(frozen=True)
class _ReleaseMeta:
    published_at: str
    with_digest: bool
    # Digests as recorded at upload time: tampering with the file later does not change them.
    digests: Mapping[str, str]


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hang up on kept-alive connections all the time; that is not an error here.
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class ForgeEmulator:
    """Threaded HTTP server on 127.0.0.1. Use as a context manager or call start()/stop()."""

    def __init__(self, root: str | os.PathLike[str], host: str = "127.0.0.1", port: int = 0):
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._failures: dict[str, _Failure] = {}
        self._redirects: dict[str, tuple[int, str]] = {}
        self._slow: dict[str, float] = {}
        self._hits: dict[str, int] = {}
        self._headers: dict[str, dict[str, str]] = {}
        self._gh_releases: dict[tuple[str, str, str], _ReleaseMeta] = {}
        self._gl_releases: dict[tuple[str, str], _ReleaseMeta] = {}
        self._digest_cache: dict[tuple[str, int, int], str] = {}
        self._server = _Server((host, port), _make_handler(self))
        self._thread: threading.Thread | None = None

    # -- lifecycle --
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ForgeEmulator:
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (Ctrl-C: KeyboardInterrupt), then close."""
        try:
            self._server.serve_forever(0.2)
        finally:
            self._server.server_close()

    def __enter__(self) -> ForgeEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- URLs --
    def rewrites(self) -> str:
        """``ASFALOAD_URL_REWRITES`` value mapping the emulated forges to this server."""
        return rewrites_for(self.origin)

    def url(self, path: str) -> str:
        """Direct (loopback) URL of a served path such as ``/files/x``."""
        return self.origin + "/" + path.lstrip("/")

    def served_path(self, public_url: str) -> str:
        """The path on this server a public forge URL is rewritten to."""
        return served_path(public_url)

    def local_url(self, public_url: str) -> str:
        return self.origin + self.served_path(public_url)

    # -- content --
    def put_file(self, path: str, data: bytes | os.PathLike[str]) -> Path:
        """Write (or replace) the file served at ``/<path>``; a PathLike is linked or copied."""
        dest = self._fs_path(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, bytes | bytearray):
            tmp = dest.with_name(dest.name + ".tmp-emu")
            tmp.write_bytes(bytes(data))
            os.replace(tmp, dest)
        else:
            if dest.exists():
                dest.unlink()
            try:
                os.link(os.fspath(data), dest)
            except OSError:
                shutil.copyfile(os.fspath(data), dest)
        return dest

    def put_github_file(self, owner: str, repo: str, ref: str, path: str, data: bytes) -> str:
        """Publish a repository file; returns its GitHub *blob* URL."""
        self.put_file(f"raw/{owner}/{repo}/{ref}/{path}", data)
        return f"{GITHUB}/{owner}/{repo}/blob/{ref}/{path}"

    def put_gitlab_file(self, project: str, ref: str, path: str, data: bytes) -> str:
        """Publish a file of GitLab project ``ns/.../name``; returns its GitLab blob URL."""
        self.put_file(f"gl/{project}/-/raw/{ref}/{path}", data)
        return f"{GITLAB}/{project}/-/blob/{ref}/{path}"

    def put_fileserver_file(self, path: str, data: bytes) -> str:
        self.put_file(f"files/{path}", data)
        return f"{FILESERVER}/{path}"

    def add_github_release(
        self,
        owner: str,
        repo: str,
        tag: str,
        files: Mapping[str, bytes | os.PathLike[str]],
        *,
        with_digest: bool = True,
        published_at: str = DEFAULT_PUBLISHED_AT,
    ) -> str:
        """Publish a release with ``files`` as assets; returns the release page URL."""
        digests = {}
        for name, data in files.items():
            dest = self.put_file(f"gh/{owner}/{repo}/releases/download/{tag}/{name}", data)
            digests[name] = _sha256_file(dest)
        with self._lock:
            self._gh_releases[(owner, repo, tag)] = _ReleaseMeta(published_at, with_digest, digests)
        return f"{GITHUB}/{owner}/{repo}/releases/tag/{tag}"

    def add_gitlab_release(
        self,
        project: str,
        tag: str,
        files: Mapping[str, bytes | os.PathLike[str]],
        *,
        released_at: str = DEFAULT_PUBLISHED_AT,
    ) -> str:
        """Publish a GitLab release (asset links); returns the release page URL."""
        for name, data in files.items():
            self.put_file(f"gl/{project}/-/releases/{tag}/downloads/{name}", data)
        with self._lock:
            self._gl_releases[(project, tag)] = _ReleaseMeta(released_at, False, {})
        return f"{GITLAB}/{project}/-/releases/{tag}"

    # -- behaviour injection --
    def fail(self, path: str, status: int, times: int = 1, retry_after: str | None = None) -> None:
        """Answer the next ``times`` requests for ``path`` with ``status``."""
        with self._lock:
            self._failures[path] = _Failure(status, times, retry_after)

    def redirect(self, path: str, location: str, status: int = 302) -> None:
        with self._lock:
            self._redirects[path] = (status, location)

    def slow(self, path: str, interval: float) -> None:
        """Serve ``path`` one byte every ``interval`` seconds."""
        with self._lock:
            self._slow[path] = interval

    def hits(self, path: str) -> int:
        with self._lock:
            return self._hits.get(path, 0)

    def last_headers(self, path: str) -> dict[str, str]:
        """Headers of the last request for ``path`` (names lower-cased)."""
        with self._lock:
            return dict(self._headers.get(path, {}))

    # -- internals used by the handler --
    def _fs_path(self, path: str) -> Path:
        rel = path.lstrip("/")
        dest = (self.root / rel).resolve()
        if dest != self.root and self.root not in dest.parents:
            raise ValueError(f"path escapes the emulator root: {path}")
        return dest

    def _digest(self, path: Path) -> str:
        st = path.stat()
        key = (str(path), st.st_size, st.st_mtime_ns)
        with self._lock:
            cached = self._digest_cache.get(key)
        if cached is None:
            cached = _sha256_file(path)
            with self._lock:
                self._digest_cache[key] = cached
        return cached

    def _github_release(self, owner: str, repo: str, tag: str) -> dict[str, Any] | None:
        folder = self.root / "gh" / owner / repo / "releases" / "download" / tag
        with self._lock:
            meta = self._gh_releases.get((owner, repo, tag))
        if not folder.is_dir():
            return None
        assets = []
        for i, f in enumerate(sorted(p for p in folder.iterdir() if p.is_file())):
            if f.name.endswith(".tmp-emu"):
                continue
            public = f"{GITHUB}/{owner}/{repo}/releases/download/{quote(tag)}/{quote(f.name)}"
            asset: dict[str, Any] = {
                "id": i + 1,
                "name": f.name,
                "size": f.stat().st_size,
                "state": "uploaded",
                "content_type": "application/octet-stream",
                "browser_download_url": public,
            }
            with_digest = meta.with_digest if meta is not None else True
            if with_digest:
                recorded = meta.digests.get(f.name) if meta is not None else None
                asset["digest"] = "sha256:" + (recorded or self._digest(f))
            else:
                asset["digest"] = None
            assets.append(asset)
        published = meta.published_at if meta is not None else DEFAULT_PUBLISHED_AT
        return {
            "tag_name": tag,
            "name": tag,
            "html_url": f"{GITHUB}/{owner}/{repo}/releases/tag/{quote(tag)}",
            "created_at": published,
            "published_at": published,
            "draft": False,
            "prerelease": False,
            "assets": assets,
        }

    def _gitlab_release(self, project: str, tag: str) -> dict[str, Any] | None:
        folder = self.root / "gl" / project / "-" / "releases" / tag / "downloads"
        if not folder.is_dir():
            return None
        with self._lock:
            meta = self._gl_releases.get((project, tag))
        links = []
        for i, f in enumerate(sorted(p for p in folder.iterdir() if p.is_file())):
            if f.name.endswith(".tmp-emu"):
                continue
            direct = f"{GITLAB}/{project}/-/releases/{quote(tag)}/downloads/{quote(f.name)}"
            links.append(
                {
                    "id": i + 1,
                    "name": f.name,
                    "url": direct,
                    "direct_asset_url": direct,
                    "link_type": "other",
                }
            )
        released = meta.published_at if meta is not None else DEFAULT_PUBLISHED_AT
        return {
            "tag_name": tag,
            "name": tag,
            "created_at": released,
            "released_at": released,
            "assets": {"count": len(links), "sources": [], "links": links},
        }


def _make_handler(emu: ForgeEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "asfaload-forge-emulator"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # quiet in tests

        # -- verbs --
        def do_GET(self) -> None:
            self._handle(send_body=True)

        def do_HEAD(self) -> None:
            self._handle(send_body=False)

        def do_PUT(self) -> None:
            path = self.path.split("?", 1)[0]
            if not path.startswith("/_emu/files/"):
                self._json(405, {"message": "Method Not Allowed"}, True)
                return
            length = int(self.headers.get("Content-Length") or 0)
            data = self.rfile.read(length)
            try:
                emu.put_file(unquote(path[len("/_emu/files/") :]), data)
            except ValueError:
                self._json(400, {"message": "bad path"}, True)
                return
            self._json(200, {"ok": True}, True)

        # -- routing --
        def _handle(self, send_body: bool) -> None:
            raw_path = self.path.split("?", 1)[0].split("#", 1)[0]
            with emu._lock:
                emu._hits[raw_path] = emu._hits.get(raw_path, 0) + 1
                emu._headers[raw_path] = {k.lower(): v for k, v in self.headers.items()}
                failure = emu._failures.get(raw_path)
                if failure is not None and failure.remaining > 0:
                    failure.remaining -= 1
                else:
                    failure = None
                redirect = emu._redirects.get(raw_path)
                slow = emu._slow.get(raw_path)
            if failure is not None:
                extra = {"Retry-After": failure.retry_after} if failure.retry_after else {}
                self._json(failure.status, {"message": "injected failure"}, send_body, extra)
                return
            if redirect is not None:
                self._json(redirect[0], {"message": "moved"}, send_body, {"Location": redirect[1]})
                return
            segs = raw_path.split("/")[1:]
            # /api/repos/<o>/<r>/releases/tags/<tag...>
            if (
                len(segs) >= 7
                and segs[:2] == ["api", "repos"]
                and segs[4:6]
                == [
                    "releases",
                    "tags",
                ]
            ):
                tag = unquote("/".join(segs[6:]))
                rel = emu._github_release(unquote(segs[2]), unquote(segs[3]), tag)
                self._release(rel, send_body)
                return
            # /gl/api/v4/projects/<id>/releases/<tag...>
            if (
                len(segs) >= 7
                and segs[:4] == ["gl", "api", "v4", "projects"]
                and (segs[5] == "releases")
            ):
                project = unquote(segs[4])
                rel = emu._gitlab_release(project, unquote("/".join(segs[6:])))
                self._release(rel, send_body)
                return
            self._file(unquote(raw_path), send_body, slow)

        def _release(self, rel: dict[str, Any] | None, send_body: bool) -> None:
            if rel is None:
                self._json(404, {"message": "Not Found"}, send_body)
            else:
                self._json(200, rel, send_body)

        # -- responses --
        def _json(
            self,
            status: int,
            obj: object,
            send_body: bool,
            extra: Mapping[str, str] | None = None,
        ) -> None:
            body = json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def _file(self, path: str, send_body: bool, slow: float | None) -> None:
            try:
                fs = emu._fs_path(path)
            except ValueError:
                fs = None
            if fs is None or not fs.is_file() or "/_emu/" in path:
                self._json(404, {"message": "Not Found"}, send_body)
                return
            size = fs.stat().st_size
            start, end = 0, size - 1
            status = 200
            rng = self.headers.get("Range")
            if rng:
                parsed = _parse_range(rng, size)
                if parsed is None:
                    self._json(
                        416,
                        {"message": "Range Not Satisfiable"},
                        send_body,
                        {"Content-Range": f"bytes */{size}"},
                    )
                    return
                start, end = parsed
                status = 206
            length = max(0, end - start + 1)
            self.send_response(status)
            ctype = "application/json" if fs.suffix == ".json" else "application/octet-stream"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(length))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Last-Modified", formatdate(fs.stat().st_mtime, usegmt=True))
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
            self.end_headers()
            if not send_body or length == 0:
                return
            try:
                with fs.open("rb") as f:
                    if slow is not None:
                        f.seek(start)
                        for _ in range(length):
                            self.wfile.write(f.read(1))
                            time.sleep(slow)
                    else:
                        self.connection.sendfile(f, offset=start, count=length)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

    return Handler


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """One ``bytes=a-b`` / ``a-`` / ``-n`` range → inclusive (start, end), or None if unsatisfiable."""
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first == "":
            n = int(last)
            if n <= 0:
                return None
            return max(0, size - n), size - 1
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return None
    return start, min(end, size - 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local forge emulator (GitHub/GitLab/files)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--root", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    emu = ForgeEmulator(args.root, host=args.host, port=args.port)
    print(
        json.dumps({"port": emu.port, "origin": emu.origin, "rewrites": emu.rewrites()}),
        flush=True,
    )
    with contextlib.suppress(KeyboardInterrupt):
        emu.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
