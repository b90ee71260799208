"""Outbound fetches of the client: URL rewrites, and the streaming, hash-while-writing download.

The artifact is written to a temporary file beside its destination and moved into place only
after its digest matches, so a failed or tampered download never leaves an output file.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

from ..errors import (
    DigestMismatchError,
    ForgeError,
    NetworkError,
    RefusingToOverwriteError,
    UnsupportedAlgorithmError,
)
from ..forge.http import ENV_REWRITES as REWRITES_ENV
from ..forge.http import apply_rewrites, parse_rewrites

CHUNK = 1 << 20
# Total time we wait for one read from a forge; the transfer itself may take as long as it needs.
FORGE_TIMEOUT = (10.0, 60.0)
SMALL_FILE_CAP = 1 << 20  # signers files are capped at 64 KiB upstream; 1 MiB is ample here

ProgressCallback = Callable[[int, int | None], None]

HASHES: Mapping[str, str] = {"sha256": "sha256", "sha512": "sha512"}
HASH_LABELS: Mapping[str, str] = {"sha256": "SHA-256", "sha512": "SHA-512"}


def rewrite_url(url: str, spec: str | None = None) -> str:
    """Where ``url`` is really fetched (``ASFALOAD_URL_REWRITES``); identities keep ``url``."""
    rules = parse_rewrites(os.environ.get(REWRITES_ENV) if spec is None else spec)
    return apply_rewrites(url, rules) or url


def _get(url: str, session: requests.Session | None, stream: bool) -> requests.Response:
    real = rewrite_url(url)
    getter = session.get if session is not None else requests.get
    try:
        resp = getter(real, stream=stream, timeout=FORGE_TIMEOUT, allow_redirects=True)
    except requests.RequestException as exc:
        raise NetworkError(f"Cannot download {url}: {type(exc).__name__}") from exc
    if resp.status_code != 200:
        resp.close()
        raise ForgeError(f"HTTP {resp.status_code}: {url}")
    return resp


def fetch_small(
    url: str, cap: int = SMALL_FILE_CAP, session: requests.Session | None = None
) -> bytes:
    """The exact bytes at ``url`` (no charset decoding: signed bytes are compared byte for byte)."""
    resp = _get(url, session, stream=True)
    try:
        data = bytearray()
        while chunk := resp.raw.read(65536, decode_content=True):
            data += chunk
            if len(data) > cap:
                raise ForgeError(f"File too large (over {cap} bytes): {url}")
        return bytes(data)
    finally:
        resp.close()


def hash_file(path: Path, algo: str) -> tuple[int, str]:
    """Size and hex digest (``sha256`` or ``sha512``) of the file at ``path``, read in chunks."""
    name = HASHES.get(algo.lower())
    if name is None:
        raise UnsupportedAlgorithmError(f"Unsupported hash algorithm: {algo}")
    hasher = hashlib.new(name)
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return size, hasher.hexdigest()


@dataclass(frozen=True)
class DownloadOutcome:
    path: Path
    size: int
    algo: str


def _content_length(resp: requests.Response) -> int | None:
    value = resp.headers.get("Content-Length")
    if value is None or "Content-Encoding" in resp.headers:
        return None
    try:
        n = int(value)
    except ValueError:
        return None
    return n if n >= 0 else None


def _place_new(tmp: Path, dest: Path) -> None:
    """Give ``tmp`` the name ``dest`` only if nothing has that name yet."""
    try:
        os.link(tmp, dest)
    except FileExistsError:
        raise RefusingToOverwriteError(f"Refusing to overwrite existing file {dest}") from None
    except OSError:
        # A file system without hard links: check, then rename (a narrow race, as before).
        if dest.exists() or dest.is_symlink():
            raise RefusingToOverwriteError(f"Refusing to overwrite existing file {dest}") from None
        os.replace(tmp, dest)
        return
    tmp.unlink()


def download_verified(
    url: str,
    dest: Path,
    algo: str,
    expected_hex: str,
    *,
    on_start: Callable[[int | None], None] | None = None,
    on_progress: ProgressCallback | None = None,
    session: requests.Session | None = None,
    overwrite: bool = True,
) -> DownloadOutcome:
    """Stream ``url`` into ``dest`` while hashing with ``algo``; move into place only on a match.
    With ``overwrite`` False a file that appeared at ``dest`` meanwhile is kept and the download
    refused (the check and the placement are one step: a hard link fails if ``dest`` exists).

    Reading the socket runs in a helper thread so that network I/O overlaps with hashing and
    writing (both release the GIL): one pass over the bytes at close to disk speed, in constant
    memory (a bounded queue of 1 MiB chunks).
    """
    name = HASHES.get(algo.lower())
    if name is None:
        raise UnsupportedAlgorithmError(f"Unsupported hash algorithm: {algo}")
    hasher = hashlib.new(name)
    resp = _get(url, session, stream=True)
    total = _content_length(resp)
    if on_start is not None:
        on_start(total)
    dest = Path(dest)
    parent = dest.parent if str(dest.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix="." + dest.name + ".", suffix=".part", dir=parent)
    tmp = Path(tmp_name)
    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=8)

    def reader() -> None:
        try:
            while chunk := resp.raw.read(CHUNK, decode_content=True):
                chunks.put(chunk)
        except BaseException as exc:  # handed to the consumer, which re-raises it
            chunks.put(exc)
            return
        chunks.put(None)

    thread = threading.Thread(target=reader, name="asfaload-download", daemon=True)
    done = 0
    moved = False
    try:
        with os.fdopen(fd, "wb") as out:
            thread.start()
            while True:
                item = chunks.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise NetworkError(f"Download interrupted: {url}") from item
                hasher.update(item)
                out.write(item)
                done += len(item)
                if on_progress is not None:
                    on_progress(done, total)
            out.flush()
            os.fsync(out.fileno())
        if total is not None and done != total:
            raise NetworkError(f"Download truncated: got {done} of {total} bytes: {url}")
        actual = hasher.hexdigest()
        if actual.lower() != expected_hex.lower():
            raise DigestMismatchError(
                f"Hash mismatch for {dest.name}: expected '{expected_hex.lower()}', got '{actual}'"
            )
        if overwrite:
            os.replace(tmp, dest)
        else:
            _place_new(tmp, dest)
        moved = True
    finally:
        resp.close()
        if thread.is_alive():
            # Unblock a reader stuck on a full queue after an early failure.
            while thread.is_alive():
                with contextlib.suppress(queue.Empty):
                    chunks.get(timeout=0.1)
        if not moved:
            tmp.unlink(missing_ok=True)
    return DownloadOutcome(path=dest, size=done, algo=name)
