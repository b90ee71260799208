"""One exception base for the whole project.

Every failure a user can cause maps to a subclass of :class:`AsfaloadError`. The CLI prints
``str(err)`` as one line and exits non-zero; the server answers ``{"error": str(err)}`` with
``err.http_status``. Messages must never carry tracebacks, secrets or absolute server paths.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
ONE_LINE_LIMIT = 2000


def one_line(text: str) -> str:
    """``text`` as a message reaches a user, on the CLI's one line or in an HTTP ``error``
    field: every run of white space (newlines included) folded to one space, any other control
    character shown as ``\\xNN`` (a hostile mirror's names and messages must not drive the
    terminal), and at most ``ONE_LINE_LIMIT`` characters."""
    folded = _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", " ".join(text.split()))
    return folded if len(folded) <= ONE_LINE_LIMIT else folded[:ONE_LINE_LIMIT] + "…"


class AsfaloadError(Exception):
    """Base of every error this project raises on purpose."""

    http_status = 400


# --- formats and parsing -------------------------------------------------------------------
class FormatError(AsfaloadError):
    """Bytes or JSON that do not parse into the expected structure."""


class KeyFormatError(FormatError):
    """A public or secret key (string or file) that cannot be parsed."""


class SignatureFormatError(FormatError):
    """A signature (wire string or file) that cannot be parsed."""


class SignersFileError(FormatError):
    """A signers file that violates the schema or its validation rules."""


class UnsupportedAlgorithmError(AsfaloadError):
    """A key, signature, KDF or hash algorithm we do not implement."""


# --- keys and passwords ----------------------------------------------------------------------
class WrongPasswordError(AsfaloadError):
    """The password does not decrypt the secret key."""

    http_status = 401


class PasswordError(AsfaloadError):
    """Missing, mismatched or too weak password."""


class RefusingToOverwriteError(AsfaloadError):
    """An output file already exists; we never overwrite."""


# --- verification -------------------------------------------------------------------------------
class VerificationError(AsfaloadError):
    """A signature, digest or threshold check failed."""


class SignatureVerificationError(VerificationError):
    """A signature does not verify for the given key and data."""


class ThresholdNotMetError(VerificationError):
    """Not enough distinct authorised signatures."""


class RevokedError(VerificationError):
    """The file has been revoked."""


class DigestMismatchError(VerificationError):
    """Downloaded or stored content does not match the expected digest."""


class CommitRefused(VerificationError):
    """A commit of the mirror (pushed, replayed or synced) is not what the rules derive."""


# --- rules and state ----------------------------------------------------------------------------
class RuleViolation(AsfaloadError):
    """The rules engine rejects an operation (generic 400)."""


class NotAuthorizedError(RuleViolation):
    """The key is not allowed to perform this operation."""

    http_status = 403


class ConflictError(RuleViolation):
    """The operation conflicts with current state (already registered, duplicate signature...)."""

    http_status = 409


class NotFoundError(AsfaloadError):
    """A file, project or pending request does not exist."""

    http_status = 404


class AuthenticationError(AsfaloadError):
    """Request authentication failed (bad headers, signature, timestamp or replayed nonce)."""

    http_status = 401


# --- infrastructure -----------------------------------------------------------------------------
class StoreError(AsfaloadError):
    """The mirror repository could not be read or written."""

    http_status = 500


class ConcurrentUpdateError(StoreError):
    """The branch tip moved while a commit was being published (lost compare-and-swap)."""

    http_status = 409


class DiskFullError(StoreError):
    """The server's disk (or the data dir's quota) is full: nothing was written, the mirror is
    as it was, and the same request succeeds once space returns. 507 Insufficient Storage."""

    http_status = 507

    def __init__(self, message: str = "Insufficient storage: the server's disk is full") -> None:
        super().__init__(message)


class ForgeError(AsfaloadError):
    """A forge (GitHub, GitLab, file server) could not be reached or answered badly.

    500, not 502: the REST manual lists forge validation and release download failures as
    500 Internal Server Error, and its status codes are the contract."""

    http_status = 500


class ForbiddenURLError(ForgeError):
    """A user-supplied URL points at a private, loopback or metadata address."""

    http_status = 400


class NetworkError(AsfaloadError):
    """The client could not talk to the backend."""

    http_status = 502


class ReadOnlyError(AsfaloadError):
    """A write sent to a read-only mirror; writes go to the primary."""

    http_status = 405


class ConfigError(AsfaloadError):
    """The server configuration (flags, ASFALOAD_* environment, TOML file) is invalid."""


def error_class_for_status(status: int) -> type[AsfaloadError]:
    """The error class an HTTP answer with ``status`` stands for (the inverse of
    ``http_status``), so a client re-raises a server's refusal as the same kind of error."""
    by_status: dict[int, type[AsfaloadError]] = {
        401: AuthenticationError,
        403: NotAuthorizedError,
        404: NotFoundError,
        409: ConflictError,
        502: NetworkError,
        504: ForgeError,
    }
    if status in by_status:
        return by_status[status]
    return StoreError if status >= 500 else RuleViolation


# --- TUF ----------------------------------------------------------------------------------------
# The TUF endpoints follow FaynoSync's contract: some failures carry two fields, a headline
# ``message`` and a detailed ``error``, and clients match on both.
class TufError(AsfaloadError):
    """A TUF request refused with FaynoSync's status, ``error`` text and optional ``message``."""

    def __init__(
        self,
        error: str,
        *,
        status: int = 400,
        message: str | None = None,
        details: str | None = None,
        data: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(error)
        self.error = error
        self.http_status = status
        self.message = message
        self.details = details
        self.data = dict(data) if data is not None else None

    def body(self) -> dict[str, Any]:
        """The JSON body FaynoSync sends for this failure."""
        out: dict[str, Any] = {"error": self.error}
        if self.message is not None:
            out["message"] = self.message
        if self.details is not None:
            out["details"] = self.details
        if self.data is not None:
            out["data"] = self.data
        return out


# Headlines the TUF endpoints answer with (FaynoSync's), kept in one place so tests and handlers
# agree.
UPDATE_FAILED = "Metadata Update Failed"
SIGNATURE_FAILED = "Signature Failed"
TASK_NOT_ACCEPTED = "Task not accepted."
