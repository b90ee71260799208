"""Reading what a peer answered (an asfaload backend, a TUF server): a JSON object and its typed
fields, or one :class:`~asfaload.errors.FormatError` naming the request it answered."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import FormatError


@dataclass(frozen=True)
class Answers:
    """The checks for one kind of peer; ``peer`` names it in errors ("backend", "server")."""

    peer: str

    def obj(self, doc: Any, what: str) -> dict[str, Any]:
        if not isinstance(doc, dict):
            raise FormatError(f"Unexpected {self.peer} answer for {what}")
        return doc

    def text(self, doc: Mapping[str, Any], name: str, what: str, default: str | None = None) -> str:
        value = doc.get(name, default)
        if not isinstance(value, str):
            raise FormatError(f"Unexpected {self.peer} answer for {what}: field {name!r}")
        return value

    def flag(self, doc: Mapping[str, Any], name: str, what: str) -> bool:
        value = doc.get(name)
        if not isinstance(value, bool):
            raise FormatError(f"Unexpected {self.peer} answer for {what}: field {name!r}")
        return value
