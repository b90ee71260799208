"""The one error type of the TUF endpoints.

FaynoSync answers some failures with two fields, a headline ``message`` and a detailed ``error``
(notes §2); clients match on both, so the error carries the headline and any extra ``data``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import AsfaloadError


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


# Headlines FaynoSync uses, kept in one place so tests and handlers agree.
UPDATE_FAILED = "Metadata Update Failed"
SIGNATURE_FAILED = "Signature Failed"
TASK_NOT_ACCEPTED = "Task not accepted."
