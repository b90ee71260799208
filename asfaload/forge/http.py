"""Outbound HTTP to forges: rewrites, address policy, total timeouts, size caps, retries.

Every forge fetch goes through :class:`HttpClient`. The rules it enforces:

- **URL rewrites** (``ASFALOAD_URL_REWRITES``, git ``insteadOf`` style): applied at fetch time only.
  Callers keep passing and storing the original URL; only the socket goes elsewhere. A prefix
  matches at a URL boundary only (``https://github.com`` does not match ``https://github.com.evil``).
- **Address policy**: a URL that is *not* rewritten came from a user or a forge answer, so every
  address its host resolves to, and the peer of the connected socket, must be public
  (:mod:`asfaload.forge.policy`) unless ``allow_private``. A rewrite target is set by the operator
  and is trusted, and so is a redirect that stays on that target's origin. The original host of a
  rewritten URL is never resolved (air-gapped setups have no DNS for it).
- **Redirects** are followed by hand (at most ``max_redirects``) so each hop is re-checked.
- **Total timeout**: a watchdog shuts the sockets of a fetch down when its deadline passes, so a
  server dripping one byte at a time cannot hold us beyond it (per-read timeouts alone would).
- **Read timeout**: besides, a forge that takes the connection and then says nothing fails after
  ``read_timeout`` (10 s), and that attempt is not retried: a silent server would only be
  waited for again, up to the total timeout.
- **Size caps**: ``Content-Length`` is checked first, then the streamed byte count.
- **Retries**: 429 and 5xx (and connection failures) are retried at most ``max_retries`` times,
  waiting ``Retry-After`` capped at ``max_retry_after`` (a forge must not hold a request for an hour).
"""

from __future__ import annotations

import email.utils
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, unquote, urljoin, urlsplit

import requests
import urllib3.exceptions
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ..errors import ForgeError, FormatError
from ..model import parse_json
from . import policy

ENV_REWRITES = "ASFALOAD_URL_REWRITES"
ENV_ALLOW_PRIVATE = "ASFALOAD_ALLOW_PRIVATE_URLS"
ENV_TOTAL_TIMEOUT = "ASFALOAD_HTTP_TIMEOUT"
ENV_DOWNLOAD_TIMEOUT = "ASFALOAD_DOWNLOAD_TIMEOUT"
ENV_MAX_ASSET_BYTES = "ASFALOAD_MAX_ASSET_BYTES"

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

SIGNERS_FILE_MAX_BYTES = 64 * KIB
CHUNK = 1 * MIB
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRIED = frozenset({429, 500, 502, 503, 504})
_CREDENTIAL_HEADERS = frozenset({"authorization", "private-token", "cookie"})
_TRUE = frozenset({"1", "true", "yes", "on"})


class ResponseTooLargeError(ForgeError):
    """A forge answer above the size cap of its fetch. A forge failure (500) unless the caller
    knows the user chose the URL of that content (a signers file: 400)."""


# --- rewrites -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Rewrite:
    prefix: str
    replacement: str

    def __post_init__(self) -> None:
        if not self.prefix or not self.replacement:
            raise FormatError(f"Invalid {ENV_REWRITES} entry: {self.prefix}={self.replacement}")
        target = urlsplit(self.replacement)
        if target.scheme not in ("http", "https") or not target.netloc:
            raise FormatError(
                f"Invalid {ENV_REWRITES} replacement (http or https URL expected): "
                f"{self.replacement}"
            )


def parse_rewrites(spec: str | None) -> tuple[Rewrite, ...]:
    """``"PREFIX=REPL,PREFIX2=REPL2"`` → rewrites, longest prefix first. Malformed → FormatError
    (a typo must not silently send requests to the real forge)."""
    out: list[Rewrite] = []
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        prefix, sep, repl = item.partition("=")
        if not sep:
            raise FormatError(f"Invalid {ENV_REWRITES} entry (PREFIX=REPLACEMENT): {item}")
        out.append(Rewrite(prefix.strip(), repl.strip()))
    prefixes = [r.prefix for r in out]
    if len(set(prefixes)) != len(prefixes):
        raise FormatError(f"Duplicate prefix in {ENV_REWRITES}")
    return tuple(sorted(out, key=lambda r: len(r.prefix), reverse=True))


def format_rewrites(rewrites: tuple[Rewrite, ...]) -> str:
    return ",".join(f"{r.prefix}={r.replacement}" for r in rewrites)


def _matches(url: str, prefix: str) -> bool:
    if not url.startswith(prefix):
        return False
    if len(url) == len(prefix) or prefix.endswith(("/", "?", "#", "=", "&")):
        return True
    return url[len(prefix)] in "/?#"


def apply_rewrites(url: str, rewrites: tuple[Rewrite, ...]) -> str | None:
    """The rewritten URL (longest matching prefix), or None when no rewrite applies."""
    best: Rewrite | None = None
    for r in rewrites:
        if _matches(url, r.prefix) and (best is None or len(r.prefix) > len(best.prefix)):
            best = r
    if best is None:
        return None
    return best.replacement + url[len(best.prefix) :]


# --- configuration ----------------------------------------------------------------------------------
def _env_number(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise FormatError(f"Invalid {name}: {raw!r}") from None
    if not value > 0:
        raise FormatError(f"Invalid {name}: {raw!r}")
    return value


@dataclass(frozen=True)
class HttpConfig:
    """Outbound HTTP settings. ``from_env()`` reads the ``ASFALOAD_*`` variables."""

    rewrites: tuple[Rewrite, ...] = ()
    allow_private: bool = False
    connect_timeout: float = 10.0
    # Longest silence of a forge, for its answer's headers or between two reads of its body.
    read_timeout: float = 10.0
    # Deadline of a whole small fetch (API answer, signers or checksums file), retries included.
    total_timeout: float = 60.0
    # Deadline of an asset download (hashing a release asset).
    download_timeout: float = 3600.0
    max_retries: int = 3
    max_retry_after: float = 10.0
    backoff: float = 0.5
    max_redirects: int = 5
    signers_max_bytes: int = SIGNERS_FILE_MAX_BYTES
    json_max_bytes: int = 8 * MIB
    checksums_max_bytes: int = 4 * MIB
    asset_max_bytes: int = 16 * GIB
    user_agent: str = "asfaload/0.1 (+https://asfaload.com)"

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "rewrites",
            tuple(sorted(self.rewrites, key=lambda r: len(r.prefix), reverse=True)),
        )
        for name in ("connect_timeout", "read_timeout", "total_timeout", "download_timeout"):
            if not getattr(self, name) > 0:
                raise FormatError(f"HttpConfig.{name} must be positive")
        if self.max_retries < 0 or self.max_redirects < 0 or self.max_retry_after < 0:
            raise FormatError("HttpConfig retry and redirect limits must not be negative")
        for name in ("signers_max_bytes", "json_max_bytes", "checksums_max_bytes"):
            if getattr(self, name) <= 0:
                raise FormatError(f"HttpConfig.{name} must be positive")
        if self.asset_max_bytes <= 0:
            raise FormatError("HttpConfig.asset_max_bytes must be positive")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> HttpConfig:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            "rewrites": parse_rewrites(env.get(ENV_REWRITES)),
            "allow_private": env.get(ENV_ALLOW_PRIVATE, "").strip().lower() in _TRUE,
            "total_timeout": _env_number(env, ENV_TOTAL_TIMEOUT, cls.total_timeout),
            "download_timeout": _env_number(env, ENV_DOWNLOAD_TIMEOUT, cls.download_timeout),
            "asset_max_bytes": int(_env_number(env, ENV_MAX_ASSET_BYTES, cls.asset_max_bytes)),
        }
        values.update(overrides)
        return cls(**values)

    def rewrite(self, url: str) -> str | None:
        return apply_rewrites(url, self.rewrites)


# --- URL syntax --------------------------------------------------------------------------------------
# Percent-decoding rounds looked through: a path still changing after this many is refused.
_MAX_DECODES = 4


def _path_escape(path: str) -> str | None:
    """Why ``path`` could leave the directory it names on some server, or None.

    A rewrite is a string prefix, so the rest of the path must stay under the operator's
    target however the server at the other end reads it: decoded once or several times, with
    ``%2F`` taken as a separator and ``;params`` stripped from segments. No layer of decoding
    may hold a dot segment, a backslash (a separator to some servers), a control character or
    bytes that are not UTF-8 (overlong forms of ``.`` and ``/``). An encoded ``/`` alone stays
    allowed: GitLab's API names projects and tags that way (``group%2Fproject``).
    """
    layer = path
    for _ in range(_MAX_DECODES):
        if "\\" in layer:
            return "an encoded backslash"
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in layer):
            return "an encoded control character"
        for seg in layer.split("/"):
            if seg.split(";", 1)[0] in (".", ".."):
                return "a '.' or '..' path segment"
        try:
            decoded = unquote(layer, errors="strict")
        except UnicodeDecodeError:
            return "percent-encoded bytes that are not UTF-8"
        if decoded == layer:
            return None
        layer = decoded
    return "too many layers of percent-encoding"


def check_url(url: str) -> SplitResult:
    """Syntax rules for any URL we fetch: absolute http(s), a host, no credentials, and a path
    that cannot walk out of a rewrite target (see :func:`_path_escape`)."""
    if not isinstance(url, str) or not url or len(url) > 4096:
        raise FormatError("Invalid URL")
    if any(c in url for c in "\\ \t\r\n\x00") or any(ord(c) < 0x20 or ord(c) == 0x7F for c in url):
        raise FormatError(f"Invalid URL: {url!r}")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise FormatError(f"Invalid URL: {url}") from None
    if parts.scheme not in ("http", "https"):
        raise FormatError(f"Unsupported URL scheme (http or https only): {url}")
    if not parts.hostname:
        raise FormatError(f"URL has no host: {url}")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise FormatError(f"URL must not carry credentials: {url}")
    why = _path_escape(parts.path)
    if why is not None:
        raise FormatError(f"URL path must not contain {why}, plain or percent-encoded: {url}")
    return parts


def origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return (parts.scheme, (parts.hostname or "").lower(), port)


# --- connections with a deadline and an address check -------------------------------------------------
class _Watchdog:
    """Shuts down every socket of one fetch when its deadline passes."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.expired = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def register(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.append(sock)
            if self.expired:
                _shutdown(sock)

    def _fire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._socks:
                _shutdown(sock)

    def __enter__(self) -> _Watchdog:
        self._timer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._timer.cancel()


def _shutdown(sock: socket.socket) -> None:
    with suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _pool_classes(
    watchdog: _Watchdog, check_addresses: bool
) -> dict[str, type[HTTPConnectionPool]]:
    def connect(host: str, port: int, make: Callable[[], socket.socket]) -> socket.socket:
        if check_addresses:
            policy.check_host(host, port)
        sock = make()
        if check_addresses:
            try:
                policy.check_peer(sock, host)
            except BaseException:
                sock.close()
                raise
        watchdog.register(sock)
        return sock

    class Conn(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return connect(self.host, self.port, super()._new_conn)

    class SConn(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return connect(self.host, self.port, super()._new_conn)

    class Pool(HTTPConnectionPool):
        ConnectionCls = Conn

    class SPool(HTTPSConnectionPool):
        ConnectionCls = SConn

    return {"http": Pool, "https": SPool}


class _Adapter(HTTPAdapter):
    def __init__(self, watchdog: _Watchdog, check_addresses: bool) -> None:
        # HTTPAdapter.__init__ calls init_poolmanager, which needs these.
        self._watchdog = watchdog
        self._check_addresses = check_addresses
        super().__init__(max_retries=0)

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(
            self._watchdog, self._check_addresses
        )


def _session(watchdog: _Watchdog, check_addresses: bool) -> requests.Session:
    s = requests.Session()
    # No proxies, netrc or env CA overrides: the address policy must see the real peer.
    s.trust_env = False
    adapter = _Adapter(watchdog, check_addresses)
    s.mount("http://", adapter)
    s.mount("https://", adapter)
    return s


# --- the client ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Fetched:
    url: str
    content: bytes
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Streamed:
    url: str
    size: int
    headers: Mapping[str, str] = field(default_factory=dict)


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class HttpClient:
    """Fetches forge URLs under an :class:`HttpConfig` (the environment's by default)."""

    def __init__(self, config: HttpConfig | None = None) -> None:
        self.config = config if config is not None else HttpConfig.from_env()

    # -- public API --
    def get(
        self,
        url: str,
        *,
        max_bytes: int,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Fetched:
        """The whole body of ``url`` (at most ``max_bytes``)."""
        parts: list[bytes] = []
        info = self.stream(url, parts.append, max_bytes=max_bytes, timeout=timeout, headers=headers)
        return Fetched(url, b"".join(parts), info.headers)

    def get_json(
        self,
        url: str,
        *,
        max_bytes: int | None = None,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        cap = self.config.json_max_bytes if max_bytes is None else max_bytes
        fetched = self.get(url, max_bytes=cap, timeout=timeout, headers=headers)
        try:
            return parse_json(fetched.content, FormatError)
        except FormatError:
            raise ForgeError(f"Invalid JSON from {url}") from None

    def stream(
        self,
        url: str,
        sink: Callable[[bytes], object],
        *,
        max_bytes: int,
        timeout: float | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Streamed:
        """Feed the body of ``url`` to ``sink`` chunk by chunk; constant memory."""
        check_url(url)
        seconds = self.config.total_timeout if timeout is None else timeout
        with self._fetch(seconds) as ctx:
            resp = self._open(url, ctx, headers or {})
            try:
                size = self._drain(resp, url, sink, max_bytes, ctx.watchdog)
                return Streamed(url, size, dict(resp.headers))
            finally:
                resp.close()

    def hash(
        self,
        url: str,
        algorithm: str = "sha256",
        *,
        max_bytes: int | None = None,
        timeout: float | None = None,
    ) -> tuple[str, int]:
        """``(hex digest, size)`` of the body of ``url``, computed while streaming."""
        import hashlib

        h = hashlib.new(algorithm)
        info = self.stream(
            url,
            h.update,
            max_bytes=self.config.asset_max_bytes if max_bytes is None else max_bytes,
            timeout=self.config.download_timeout if timeout is None else timeout,
        )
        return h.hexdigest(), info.size

    # -- internals --
    @contextmanager
    def _fetch(self, seconds: float) -> Iterator[_FetchContext]:
        with _Watchdog(seconds) as wd:
            ctx = _FetchContext(wd)
            try:
                yield ctx
            finally:
                ctx.close()

    def _open(self, url: str, ctx: _FetchContext, headers: Mapping[str, str]) -> requests.Response:
        current = url
        trusted_origin: tuple[str, str, int] | None = None
        first_origin: tuple[str, str, int] | None = None
        for hop in range(self.config.max_redirects + 1):
            try:
                check_url(current)
            except FormatError:
                if hop == 0:
                    raise
                raise ForgeError(f"Forge redirected {url} to an invalid URL") from None
            target = self.config.rewrite(current)
            if target is not None:
                try:
                    check_url(target)
                except FormatError:
                    # Never name the rewrite target: it is the operator's internal address.
                    raise FormatError(f"Invalid URL once rewritten: {current}") from None
                trusted = True
            else:
                target = current
                trusted = trusted_origin is not None and origin(current) == trusted_origin
            check = not (trusted or self.config.allow_private)
            if first_origin is None:
                first_origin = origin(target)
            # Credentials (API tokens) never follow a redirect to another origin.
            hop_headers = (
                headers
                if origin(target) == first_origin
                else {k: v for k, v in headers.items() if k.lower() not in _CREDENTIAL_HEADERS}
            )
            resp = self._attempts(target, url, ctx, check, hop_headers)
            if resp.status_code not in _REDIRECTS:
                return resp
            location = resp.headers.get("Location")
            resp.close()
            if not location:
                raise ForgeError(f"Redirect without a Location from {url}")
            # A relative Location stays on the server we actually talked to.
            current = urljoin(target, location.strip())
            trusted_origin = origin(target) if trusted else None
        raise ForgeError(f"Too many redirects fetching {url}")

    def _attempts(
        self,
        target: str,
        shown: str,
        ctx: _FetchContext,
        check: bool,
        headers: Mapping[str, str],
    ) -> requests.Response:
        cfg = self.config
        wd = ctx.watchdog
        session = ctx.session(check)
        all_headers = {"User-Agent": cfg.user_agent, "Accept-Encoding": "identity", **headers}
        last_status: int | None = None
        for attempt in range(cfg.max_retries + 1):
            remaining = wd.remaining()
            if remaining <= 0 or wd.expired:
                raise self._timeout(shown, wd)
            try:
                resp = session.get(
                    target,
                    headers=all_headers,
                    stream=True,
                    allow_redirects=False,
                    timeout=(min(cfg.connect_timeout, remaining), min(cfg.read_timeout, remaining)),
                )
            except requests.RequestException as exc:
                if wd.expired:
                    raise self._timeout(shown, wd) from None
                silent = isinstance(exc, requests.ReadTimeout)
                if attempt < cfg.max_retries and not silent:
                    self._sleep(min(cfg.backoff * 2**attempt, cfg.max_retry_after), shown, wd)
                    continue
                raise ForgeError(f"Failed to fetch {shown}: {_describe(exc)}") from None
            if resp.status_code in _RETRIED:
                last_status = resp.status_code
                wait = _retry_after(resp.headers.get("Retry-After"))
                resp.close()
                if attempt >= cfg.max_retries:
                    break
                if wait is None:
                    wait = cfg.backoff * 2**attempt
                self._sleep(min(wait, cfg.max_retry_after), shown, wd)
                continue
            if resp.status_code in _REDIRECTS or 200 <= resp.status_code < 300:
                return resp
            status = resp.status_code
            resp.close()
            raise ForgeError(f"Forge returned status {status} for {shown}")
        if last_status == 429:
            raise ForgeError(
                f"Forge rate limit exceeded after {cfg.max_retries} retries for {shown}"
            )
        raise ForgeError(
            f"Forge returned status {last_status} for {shown} after {cfg.max_retries} retries"
        )

    def _sleep(self, seconds: float, shown: str, wd: _Watchdog) -> None:
        if seconds >= wd.remaining():
            raise self._timeout(shown, wd)
        time.sleep(max(0.0, seconds))

    @staticmethod
    def _timeout(shown: str, wd: _Watchdog) -> ForgeError:
        return ForgeError(f"Timed out after {wd.seconds:g} s fetching {shown}")

    def _drain(
        self,
        resp: requests.Response,
        shown: str,
        sink: Callable[[bytes], object],
        max_bytes: int,
        wd: _Watchdog,
    ) -> int:
        length = resp.headers.get("Content-Length", "").strip()
        if length.isdigit() and int(length) > max_bytes:
            raise ResponseTooLargeError(
                f"Response from {shown} exceeds the size limit of {max_bytes} bytes"
            )
        total = 0
        try:
            for chunk in resp.raw.stream(CHUNK, decode_content=False):
                total += len(chunk)
                if total > max_bytes:
                    raise ResponseTooLargeError(
                        f"Response from {shown} exceeds the size limit of {max_bytes} bytes"
                    )
                sink(chunk)
        except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
            if wd.expired:
                raise self._timeout(shown, wd) from None
            raise ForgeError(f"Failed to read {shown}: {_describe(exc)}") from None
        if wd.expired:
            # The watchdog's shutdown can look like a clean end of a close-delimited body.
            raise self._timeout(shown, wd)
        return total


class _FetchContext:
    """The two sessions of one fetch (address-checked and trusted) and its watchdog."""

    def __init__(self, watchdog: _Watchdog) -> None:
        self.watchdog = watchdog
        self._sessions: dict[bool, requests.Session] = {}

    def session(self, check_addresses: bool) -> requests.Session:
        if check_addresses not in self._sessions:
            self._sessions[check_addresses] = _session(self.watchdog, check_addresses)
        return self._sessions[check_addresses]

    def close(self) -> None:
        for s in self._sessions.values():
            s.close()


def _describe(exc: BaseException) -> str:
    # Never echo the library's message: it names the rewritten (operator-internal) host.
    if isinstance(exc, requests.Timeout | urllib3.exceptions.TimeoutError | TimeoutError):
        return "timed out"
    if isinstance(exc, requests.exceptions.SSLError):
        return "TLS error"
    if isinstance(exc, requests.ConnectionError | ConnectionError):
        return "connection failed"
    return "transfer failed"
