"""Strict base64 helpers shared by the key and signature parsers.

Every parser funnels its base64 through here so that one place decides what "canonical" means:
no whitespace, no alternative alphabet, and re-encoding must give back the input. That keeps one
key or signature from having several accepted spellings.
"""

from __future__ import annotations

import base64
import binascii

from ..errors import FormatError


def b64encode(data: bytes, *, pad: bool = True) -> str:
    text = base64.b64encode(data).decode("ascii")
    return text if pad else text.rstrip("=")


def b64decode(
    text: str, *, error: type[FormatError], what: str, allow_unpadded: bool = False
) -> bytes:
    """Decode standard base64, refusing anything that would not round-trip."""
    if not text.isascii():
        raise error(f"{what} is not valid base64")
    padded = text
    if allow_unpadded and "=" not in text:
        padded = text + "=" * (-len(text) % 4)
    try:
        data = base64.b64decode(padded.encode("ascii"), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise error(f"{what} is not valid base64") from exc
    if base64.b64encode(data).decode("ascii") != padded:
        raise error(f"{what} is not canonical base64")
    return data
