"""Typed HTTP client for ``POST /login`` and the ``/tuf/v1`` endpoints (FaynoSync shapes).

Usable from Python without the CLI. Every non-2xx answer becomes one of our exception types with
a one-line message built from FaynoSync's two fields (``message`` headline, ``error`` detail), so
the CLI can print it and exit non-zero. Connection failures are :class:`NetworkError`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from ..errors import (
    AsfaloadError,
    AuthenticationError,
    FormatError,
    NetworkError,
    error_class_for_status,
    one_line,
)
from ..layout import DEFAULT_BACKEND_URL
from ..model.answers import Answers
from .documents import Expirations

# (connect, read) seconds: a server that stops answering must not hang a script forever.
DEFAULT_TIMEOUT = (10.0, 60.0)
USER_AGENT = "asfaload-tuf-client"


def error_from_response(resp: requests.Response) -> AsfaloadError:
    """Our exception for a non-2xx answer, keeping the server's words."""
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    error = doc.get("error") if isinstance(doc, dict) else None
    message = doc.get("message") if isinstance(doc, dict) else None
    if not isinstance(error, str) or not error:
        lines = resp.text.strip().splitlines()
        error = f"HTTP {resp.status_code}" + (f": {lines[0][:200]}" if lines else "")
    headline = message if isinstance(message, str) and message else None
    text = f"{headline}: {error}" if headline and headline not in error else error
    err = error_class_for_status(resp.status_code)(one_line(text))
    err.http_status = resp.status_code
    return err


# --- answers -------------------------------------------------------------------------------------
_answers = Answers("server")


@dataclass(frozen=True)
class SideProgress:
    """One root's view of a draft's signatures (trusted root = old, draft = new)."""

    threshold: int
    signed: tuple[str, ...]
    missing: tuple[str, ...]
    remaining: int

    @classmethod
    def from_dict(cls, d: Any) -> SideProgress:
        d = _answers.obj(d, "signing progress")
        threshold, remaining = d.get("threshold"), d.get("remaining")
        signed, missing = d.get("signed", []), d.get("missing", [])
        if not isinstance(threshold, int) or not isinstance(remaining, int):
            raise FormatError("Unexpected server answer for signing progress")
        if not isinstance(signed, list) or not isinstance(missing, list):
            raise FormatError("Unexpected server answer for signing progress")
        return cls(threshold, tuple(map(str, signed)), tuple(map(str, missing)), remaining)


@dataclass(frozen=True)
class SigningProgress:
    """How far a root draft is from publication (TUF spec 5.3.4: old AND new threshold)."""

    version: int
    collected: int
    complete: bool
    old: SideProgress
    new: SideProgress
    summary: str

    @classmethod
    def from_dict(cls, d: Any) -> SigningProgress:
        d = _answers.obj(d, "signing progress")
        version, collected = d.get("version"), d.get("collected")
        if not isinstance(version, int) or not isinstance(collected, int):
            raise FormatError("Unexpected server answer for signing progress")
        return cls(
            version,
            collected,
            bool(d.get("complete")),
            SideProgress.from_dict(d.get("old")),
            SideProgress.from_dict(d.get("new")),
            str(d.get("summary", "")),
        )


@dataclass(frozen=True)
class WriteResult:
    """The answer of a write (bootstrap, rotate, sign, delete): task id and, for roots, progress."""

    task_id: str
    last_update: str
    message: str
    published: bool | None = None
    version: int | None = None
    progress: SigningProgress | None = None
    body: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_body(cls, body: Any, what: str) -> WriteResult:
        body = _answers.obj(body, what)
        data = _answers.obj(body.get("data"), what)
        published = data.get("published")
        version = data.get("version")
        progress = data.get("progress")
        return cls(
            task_id=_answers.text(data, "task_id", what),
            last_update=str(data.get("last_update", "")),
            message=str(body.get("message", "")),
            published=published if isinstance(published, bool) else None,
            version=version if isinstance(version, int) else None,
            progress=SigningProgress.from_dict(progress) if progress is not None else None,
            body=body,
        )


@dataclass(frozen=True)
class PendingRoot:
    """``GET /tuf/v1/metadata/sign``: the draft, the trusted root, and our progress extension."""

    root: dict[str, Any]
    trusted_root: dict[str, Any] | None
    progress: SigningProgress | None
    body: Mapping[str, Any] = field(default_factory=dict)

    @property
    def version(self) -> int | None:
        signed = self.root.get("signed")
        v = signed.get("version") if isinstance(signed, dict) else None
        return v if isinstance(v, int) else None


@dataclass(frozen=True)
class BootstrapStatus:
    bootstrapped: bool
    task_id: str
    message: str
    body: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TaskState:
    task_id: str
    state: str
    result: Mapping[str, Any]
    body: Mapping[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The result's message or error, if any."""
        for key in ("message", "error"):
            value = self.result.get(key)
            if isinstance(value, str) and value:
                return value
        return ""


@dataclass(frozen=True)
class RoleExpiryState:
    """One role of ``GET /tuf/v1/metadata/expiry``; times are TUF's ``YYYY-MM-DDTHH:MM:SSZ``."""

    role: str
    version: int
    expires: str
    expired: bool
    online: bool
    refresh_at: str | None

    @classmethod
    def from_dict(cls, d: Any) -> RoleExpiryState:
        what = "metadata expiry"
        d = _answers.obj(d, what)
        version, refresh_at = d.get("version"), d.get("refresh_at")
        if not isinstance(version, int) or not (refresh_at is None or isinstance(refresh_at, str)):
            raise FormatError(f"Unexpected server answer for {what}")
        return cls(
            _answers.text(d, "role", what),
            version,
            _answers.text(d, "expires", what),
            bool(d.get("expired")),
            bool(d.get("online")),
            refresh_at,
        )


@dataclass(frozen=True)
class ExpiryStatus:
    """``GET /tuf/v1/metadata/expiry``: the roles, and whether and how the server re-signs."""

    roles: tuple[RoleExpiryState, ...]
    refresh_enabled: bool
    refresh_margin: int
    refresh_interval: int
    body: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_body(cls, body: Any) -> ExpiryStatus:
        what = "metadata expiry"
        data = _answers.obj(_answers.obj(body, what).get("data"), what)
        roles, refresh = data.get("roles"), _answers.obj(data.get("refresh"), what)
        margin, interval = refresh.get("margin"), refresh.get("interval")
        if not isinstance(roles, list) or not isinstance(margin, int):
            raise FormatError(f"Unexpected server answer for {what}")
        if not isinstance(interval, int):
            raise FormatError(f"Unexpected server answer for {what}")
        return cls(
            tuple(RoleExpiryState.from_dict(r) for r in roles),
            bool(refresh.get("enabled")),
            margin,
            interval,
            body,
        )


# --- the client ----------------------------------------------------------------------------------
class TufClient:
    """One server; ``token`` (from :meth:`login`) is needed by every ``/tuf/v1`` call."""

    def __init__(
        self,
        base_url: str = DEFAULT_BACKEND_URL,
        token: str | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        session: requests.Session | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.session = session or requests.Session()

    # --- plumbing -------------------------------------------------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        auth: bool = True,
    ) -> Any:
        headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        if auth:
            if not self.token:
                raise AuthenticationError("No token: run `asfaload tuf login` first")
            headers["Authorization"] = f"Bearer {self.token}"
        url = self.base_url + path
        try:
            resp = self.session.request(
                method,
                url,
                params=params,
                json=body,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            reason = one_line(str(exc))[:200]
            raise NetworkError(f"Cannot reach {self.base_url}: {reason}") from None
        if not 200 <= resp.status_code < 300:
            raise error_from_response(resp)
        try:
            return resp.json()
        except ValueError:
            raise FormatError(f"{method} {path}: the server's answer is not JSON") from None

    # --- endpoints ------------------------------------------------------------------------------
    def login(self, username: str, password: str) -> str:
        """``POST /login``; keeps and returns the token."""
        doc = _answers.obj(
            self._request(
                "POST", "/login", body={"username": username, "password": password}, auth=False
            ),
            "login",
        )
        self.token = _answers.text(doc, "token", "login")
        return self.token

    def bootstrap_status(self, app: str) -> BootstrapStatus:
        body = _answers.obj(
            self._request("GET", "/tuf/v1/bootstrap", params={"appName": app}), "bootstrap"
        )
        data = _answers.obj(body.get("data"), "bootstrap")
        return BootstrapStatus(
            bool(data.get("bootstrap")),
            str(data.get("id") or ""),
            str(body.get("message", "")),
            body,
        )

    def bootstrap(
        self, app: str, root: Mapping[str, Any], expirations: Expirations | None = None
    ) -> WriteResult:
        exp = expirations or Expirations()
        settings = {"roles": {role: {"expiration": days} for role, days in exp.to_dict().items()}}
        body = {"appName": app, "settings": settings, "metadata": {"root": dict(root)}}
        return WriteResult.from_body(
            self._request("POST", "/tuf/v1/bootstrap", body=body), "bootstrap"
        )

    def rotate(self, app: str, root: Mapping[str, Any]) -> WriteResult:
        """``POST /tuf/v1/metadata``: publish a fully signed root, or store it as the draft."""
        body = {"metadata": {"root": dict(root)}}
        return WriteResult.from_body(
            self._request("POST", "/tuf/v1/metadata", params={"appName": app}, body=body),
            "rotate",
        )

    def pending(self, app: str) -> PendingRoot | None:
        """``GET /tuf/v1/metadata/sign``: the root draft, or None when nothing is pending."""
        body = _answers.obj(
            self._request("GET", "/tuf/v1/metadata/sign", params={"appName": app}), "pending"
        )
        data = body.get("data")
        if data is None:
            return None
        metadata = _answers.obj(_answers.obj(data, "pending").get("metadata"), "pending")
        root = _answers.obj(metadata.get("root"), "pending")
        trusted = metadata.get("trusted_root")
        progress = data.get("progress")
        return PendingRoot(
            root,
            _answers.obj(trusted, "pending") if trusted is not None else None,
            SigningProgress.from_dict(progress) if progress is not None else None,
            body,
        )

    def sign(self, app: str, signature: Mapping[str, str], role: str = "root") -> WriteResult:
        """``POST /tuf/v1/metadata/sign`` with one ``{keyid, sig}``."""
        body = {"role": role, "signature": dict(signature)}
        return WriteResult.from_body(
            self._request("POST", "/tuf/v1/metadata/sign", params={"appName": app}, body=body),
            "sign",
        )

    def delete_pending(self, app: str, role: str = "root") -> WriteResult:
        """``POST /tuf/v1/metadata/sign/delete``: abandon the draft."""
        return WriteResult.from_body(
            self._request(
                "POST", "/tuf/v1/metadata/sign/delete", params={"appName": app}, body={"role": role}
            ),
            "delete",
        )

    def refresh_online(self, app: str, roles: Sequence[str] = ()) -> WriteResult:
        """``POST /tuf/v1/metadata/online``: re-sign online roles (all when ``roles`` is empty)."""
        return WriteResult.from_body(
            self._request(
                "POST",
                "/tuf/v1/metadata/online",
                params={"appName": app},
                body={"roles": list(roles)},
            ),
            "online",
        )

    def trusted_root(self, app: str) -> dict[str, Any] | None:
        """``GET /tuf/v1/metadata/root``: the verified current root, or None."""
        body = _answers.obj(
            self._request("GET", "/tuf/v1/metadata/root", params={"appName": app}), "root"
        )
        root = _answers.obj(body.get("data"), "root").get("trusted_root")
        return _answers.obj(root, "root") if root is not None else None

    def expiry(self, app: str) -> ExpiryStatus:
        """``GET /tuf/v1/metadata/expiry``: per role its version, expiry and next re-signing."""
        return ExpiryStatus.from_body(
            self._request("GET", "/tuf/v1/metadata/expiry", params={"appName": app})
        )

    def task(self, task_id: str) -> TaskState:
        body = _answers.obj(
            self._request("GET", "/tuf/v1/task", params={"task_id": task_id}), "task"
        )
        data = _answers.obj(body.get("data"), "task")
        result = data.get("result") or {}
        return TaskState(
            _answers.text(data, "task_id", "task"),
            _answers.text(data, "state", "task"),
            _answers.obj(result, "task"),
            body,
        )
