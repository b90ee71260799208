"""Typed HTTP client for every ``/v1`` endpoint of the backend (the REST manual is the contract).

Usable from Python without the CLI. Authenticated calls carry the ``X-asfld-*`` headers built by
:func:`asfaload.auth.sign_request` over the exact request target and body bytes that are sent.
Every non-2xx answer becomes one of our own exception types, carrying the server's message.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import requests

from ..auth import sign_request
from ..crypto import PublicKey, SecretKey, Signature
from ..errors import (
    AsfaloadError,
    AuthenticationError,
    FormatError,
    NetworkError,
    NotFoundError,
    RuleViolation,
    error_class_for_status,
)
from ..layout import DEFAULT_BACKEND_URL
from ..model.answers import Answers

# (connect, read) seconds: a backend that stops answering must not hang a CI job forever.
DEFAULT_TIMEOUT = (10.0, 60.0)
USER_AGENT = "asfaload-client"
# The states a signed file can be in (asfaload.rules.status).
FILE_STATES = ("pending", "complete", "revoked")


def error_for_status(status: int, message: str) -> AsfaloadError:
    """The exception a backend answer with ``status`` stands for, with the server's message."""
    return error_class_for_status(status)(message)


def _error_message(resp: requests.Response) -> str:
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("error"), str) and doc["error"]:
        return str(doc["error"])
    text = resp.text.strip().splitlines()
    first = text[0][:200] if text else ""
    return f"HTTP {resp.status_code}" + (f": {first}" if first else "")


def parse_backend_urls(values: str | Iterable[str]) -> tuple[str, ...]:
    """Backend URLs from ``-u`` values and ``ASFALOAD_BACKEND_URL``, each maybe a comma list.

    The one place a client's base URLs are built: trailing slashes dropped, duplicates
    removed (first occurrence kept, order is the failover order). Raises FormatError for an
    empty list or a value that is not an http(s) URL with a host.
    """
    items = [values] if isinstance(values, str) else list(values)
    urls: list[str] = []
    for item in items:
        for part in item.split(","):
            url = part.strip().rstrip("/")
            if not url:
                continue
            try:
                parts = urlsplit(url)
                ok = parts.scheme in ("http", "https") and bool(parts.hostname)
                parts.port  # noqa: B018  (raises ValueError on a bad port)
            except ValueError:
                ok = False
            if not ok:
                raise FormatError(f"Invalid backend URL (expected http:// or https://): {url}")
            if url not in urls:
                urls.append(url)
    if not urls:
        raise FormatError("No backend URL given")
    return tuple(urls)


def _fails_over(exc: requests.RequestException, method: str) -> bool:
    """Connection-level failures move to the next backend; HTTP answers never do.

    A request that could not connect (refused, DNS, TLS, connect timeout) reached no server. A
    read timeout may come after the server acted, so only a GET, which changes nothing, is
    retried elsewhere then.
    """
    if isinstance(exc, requests.ConnectionError):  # includes ConnectTimeout and SSLError
        return True
    return isinstance(exc, requests.Timeout) and method == "GET"


def encode_path(path: str) -> str:
    """Percent-encode a mirror path for a catch-all route, keeping its slashes."""
    return quote(path.strip("/"), safe="/")


@dataclass(frozen=True)
class RegistrationResult:
    """Answer of ``register_repo`` and ``update_signers``."""

    success: bool
    project_id: str
    message: str
    required_signers: tuple[str, ...]
    signature_submission_url: str


@dataclass(frozen=True)
class AssetsResult:
    success: bool
    message: str
    index_file_path: str


@dataclass(frozen=True)
class SignatureStatus:
    """``GET /v1/signatures/…``: ``status`` is ``pending``, ``complete`` or ``revoked``;
    ``document`` is the whole answer (groups, signers, revocation), as the server sent it."""

    file_path: str
    is_complete: bool
    status: str
    document: Mapping[str, Any]


@dataclass(frozen=True)
class ListedFile:
    file_path: str
    status: str


@dataclass(frozen=True)
class RevokeResult:
    success: bool
    message: str
    # "revoked", or "pending" while the revocation awaits co-signers (a server that does not
    # say is taken at its word: revoked).
    status: str = "revoked"


_answers = Answers("backend")


class BackendClient:
    """One backend, or several tried in order. ``secret_key`` is needed only for the
    authenticated endpoints.

    ``base_url`` is a URL, a comma list or a sequence of URLs (:func:`parse_backend_urls`). A
    request that cannot reach a backend (:func:`_fails_over`) is sent to the next one, and
    the client stays with the first that answers; any HTTP answer, error or not, is final.
    """

    label = "the backend"

    def __init__(
        self,
        base_url: str | Iterable[str] = DEFAULT_BACKEND_URL,
        secret_key: SecretKey | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        self.base_urls = parse_backend_urls(base_url)
        self._active = 0
        self.secret_key = secret_key
        self.timeout = timeout
        self._session = session or requests.Session()
        self._session.headers["User-Agent"] = USER_AGENT

    @property
    def base_url(self) -> str:
        """The backend requests go to now (the first that answered)."""
        return self.base_urls[self._active]

    # --- transport ------------------------------------------------------------------------
    def _request(
        self,
        method: str,
        target: str,
        *,
        body: Any = None,
        auth: bool = False,
        stream: bool = False,
    ) -> requests.Response:
        raw = b"" if body is None else json.dumps(body).encode("utf-8")
        headers: dict[str, str] = {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if auth:
            if self.secret_key is None:
                raise AuthenticationError("A secret key is required for this command")
            headers.update(sign_request(self.secret_key, method, target, raw))
        resp = self._send(method, target, raw if body is not None else None, headers, stream)
        if not 200 <= resp.status_code < 300:
            try:
                raise error_for_status(resp.status_code, _error_message(resp))
            finally:
                resp.close()
        return resp

    def _send(
        self, method: str, target: str, data: bytes | None, headers: dict[str, str], stream: bool
    ) -> requests.Response:
        order = [*range(self._active, len(self.base_urls)), *range(self._active)]
        failures: list[str] = []
        last: requests.RequestException | None = None
        for i in order:
            url = self.base_urls[i]
            try:
                resp = self._session.request(
                    method,
                    url + target,
                    data=data,
                    headers=headers,
                    timeout=self.timeout,
                    stream=stream,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                if len(self.base_urls) == 1 or not _fails_over(exc, method):
                    raise NetworkError(
                        f"Cannot reach the backend at {url}: {_reason(exc)}"
                    ) from exc
                failures.append(f"{url}: {_reason(exc)}")
                last = exc
                continue
            self._active = i
            return resp
        raise NetworkError("Cannot reach any backend: " + "; ".join(failures)) from last

    def _json(self, method: str, target: str, *, body: Any = None, auth: bool = False) -> Any:
        resp = self._request(method, target, body=body, auth=auth)
        try:
            return resp.json()
        except ValueError as exc:
            raise FormatError(f"The backend answered {target} with invalid JSON") from exc

    # --- public endpoints -------------------------------------------------------------------
    def ping(self) -> bool:
        self._request("GET", "/v1/ping")
        return True

    def ping_status(self) -> dict[str, Any]:
        """``GET /v1/ping``'s answer, ``{"status": "ok"}`` from a healthy backend."""
        doc = _answers.obj(self._json("GET", "/v1/ping"), "ping")
        status = _answers.text(doc, "status", "ping")
        if status != "ok":
            raise FormatError(f"The backend answered ping with status {status[:60]!r}")
        return doc

    def get_file(self, path: str) -> bytes:
        """Raw bytes of a mirror file (``GET /v1/files/{path}``)."""
        return self._request("GET", "/v1/files/" + encode_path(path)).content

    def get_file_or_none(self, path: str) -> bytes | None:
        try:
            return self.get_file(path)
        except NotFoundError:
            return None

    def get_signers(self, path: str) -> bytes:
        """Raw active signers file governing ``path`` (``GET /v1/get_signers/{path}``)."""
        return self._request("GET", "/v1/get_signers/" + encode_path(path)).content

    def get_signers_chain(self, artifact_path: str) -> dict[str, Any]:
        doc = self._json("GET", "/v1/get_signers_chain/" + encode_path(artifact_path))
        return _answers.obj(doc, "get_signers_chain")

    # --- authenticated endpoints --------------------------------------------------------------
    def _own_key(self) -> PublicKey:
        if self.secret_key is None:
            raise AuthenticationError("A secret key is required for this command")
        return self.secret_key.public_key

    def _registration(self, endpoint: str, signers_file_url: str) -> RegistrationResult:
        what = endpoint.rsplit("/", 1)[-1]
        body = {"signers_file_url": signers_file_url, "public_key": str(self._own_key())}
        doc = _answers.obj(self._json("POST", endpoint, body=body, auth=True), what)
        signers = doc.get("required_signers", [])
        if not isinstance(signers, list) or not all(isinstance(s, str) for s in signers):
            raise FormatError(f"Unexpected backend answer for {what}: field 'required_signers'")
        return RegistrationResult(
            success=_answers.flag(doc, "success", what),
            project_id=_answers.text(doc, "project_id", what),
            message=_answers.text(doc, "message", what, ""),
            required_signers=tuple(signers),
            signature_submission_url=_answers.text(
                doc, "signature_submission_url", what, "/v1/signatures"
            ),
        )

    def register_repo(self, signers_file_url: str) -> RegistrationResult:
        return self._registration("/v1/register_repo", signers_file_url)

    def update_signers(self, signers_file_url: str) -> RegistrationResult:
        return self._registration("/v1/update_signers", signers_file_url)

    def register_assets(
        self,
        *,
        github_release_url: str | None = None,
        csum_files: list[str] | None = None,
        gitlab_release_url: str | None = None,
    ) -> AssetsResult:
        given = [
            x for x in (github_release_url, csum_files, gitlab_release_url) if x not in (None, [])
        ]
        if len(given) != 1:
            raise RuleViolation(
                "Exactly one of a GitHub release URL, a GitLab release URL or checksum files "
                "must be given (they are mutually exclusive)"
            )
        body: dict[str, Any]
        if github_release_url is not None:
            body = {"github_release_url": github_release_url}
        elif gitlab_release_url is not None:
            body = {"gitlab_release_url": gitlab_release_url}
        else:
            body = {"csum_files": list(csum_files or [])}
        doc = _answers.obj(self._json("POST", "/v1/assets", body=body, auth=True), "assets")
        return AssetsResult(
            success=_answers.flag(doc, "success", "assets"),
            message=_answers.text(doc, "message", "assets", ""),
            index_file_path=_answers.text(doc, "index_file_path", "assets"),
        )

    def pending_signatures(self) -> list[str]:
        doc = _answers.obj(
            self._json("GET", "/v1/pending_signatures", auth=True), "pending_signatures"
        )
        paths = doc.get("file_paths")
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            raise FormatError("Unexpected backend answer for pending_signatures")
        return list(paths)

    def pending_files(self) -> list[ListedFile]:
        """``GET /v1/pending_signatures`` with each file's state."""
        doc = _answers.obj(
            self._json("GET", "/v1/pending_signatures", auth=True), "pending_signatures"
        )
        files = doc.get("files")
        if not isinstance(files, list):
            raise FormatError("Unexpected backend answer for pending_signatures")
        out: list[ListedFile] = []
        for item in files:
            if not isinstance(item, dict):
                raise FormatError("Unexpected backend answer for pending_signatures")
            status = _answers.text(item, "status", "pending_signatures")
            if status not in FILE_STATES:
                raise FormatError("Unexpected backend answer for pending_signatures")
            out.append(ListedFile(_answers.text(item, "file_path", "pending_signatures"), status))
        return out

    def files_to_sign(self, path: str) -> dict[str, bytes]:
        """Every file to sign for ``path`` (the signers file comes with its metadata)."""
        doc = _answers.obj(
            self._json("GET", "/v1/files-to-sign/" + encode_path(path), auth=True),
            "files-to-sign",
        )
        files = doc.get("files")
        if not isinstance(files, dict) or not files:
            raise FormatError("Unexpected backend answer for files-to-sign")
        out: dict[str, bytes] = {}
        for name, b64 in files.items():
            if not isinstance(name, str) or not isinstance(b64, str):
                raise FormatError("Unexpected backend answer for files-to-sign")
            try:
                out[name] = base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise FormatError(f"Invalid base64 content for {name} in files-to-sign") from exc
        return out

    def submit_signatures(self, file_path: str, signatures: Mapping[str, Signature]) -> bool:
        """Submit our signatures (path → signature) in one request; True when complete."""
        body = {
            "file_path": file_path,
            "public_key": str(self._own_key()),
            "signatures": {p: s.to_wire() for p, s in signatures.items()},
        }
        doc = _answers.obj(self._json("POST", "/v1/signatures", body=body, auth=True), "signatures")
        return _answers.flag(doc, "is_complete", "signatures")

    def signature_status(self, path: str) -> SignatureStatus:
        """Public; signed with the secret key when the client has one."""
        doc = _answers.obj(
            self._json(
                "GET",
                "/v1/signatures/" + encode_path(path),
                auth=self.secret_key is not None,
            ),
            "signatures",
        )
        status = _answers.text(doc, "status", "signatures")
        if status not in FILE_STATES:
            raise FormatError(f"Unexpected backend answer for signatures: status {status!r}")
        return SignatureStatus(
            file_path=_answers.text(doc, "file_path", "signatures", path),
            is_complete=_answers.flag(doc, "is_complete", "signatures"),
            status=status,
            document=doc,
        )

    def revoke(self, file_path: str, revocation_json: str, signature: Signature) -> RevokeResult:
        body = {
            "file_path": file_path,
            "revocation_json": revocation_json,
            "signature": signature.to_wire(),
            "public_key": str(self._own_key()),
        }
        doc = _answers.obj(self._json("POST", "/v1/revoke", body=body, auth=True), "revoke")
        status = _answers.text(doc, "status", "revoke", "revoked")
        if status not in ("revoked", "pending"):
            raise FormatError(f"Unexpected backend answer for revoke: status {status[:40]!r}")
        return RevokeResult(
            success=_answers.flag(doc, "success", "revoke"),
            message=_answers.text(doc, "message", "revoke", ""),
            status=status,
        )

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> BackendClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reason(exc: requests.RequestException) -> str:
    # requests nests the socket error several levels deep (ConnectionError → MaxRetryError →
    # NewConnectionError → ConnectionRefusedError); the OS's own words are the useful part.
    cur: BaseException | None = exc
    seen: set[int] = set()
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and cur.strerror:
            return str(cur.strerror)
        reason = getattr(cur, "reason", None)
        arg = cur.args[0] if cur.args else None
        cur = (
            cur.__cause__
            or (reason if isinstance(reason, BaseException) else None)
            or (arg if isinstance(arg, BaseException) else None)
        )
    text = str(exc)
    return text.splitlines()[-1][:300] if text else type(exc).__name__


def iter_chunks(resp: requests.Response, size: int) -> Iterator[bytes]:
    """Body chunks straight from the socket, without requests' per-chunk decode machinery."""
    raw = resp.raw
    while True:
        chunk = raw.read(size)
        if not chunk:
            return
        yield chunk
