"""A plain file server: any host that is not a known forge. The URL is the raw URL."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

from ..errors import FormatError
from .http import check_url


def raw_url(url: str) -> str:
    """The URL itself, minus its fragment (never sent anyway); it must name a file."""
    parts = check_url(url)
    if not parts.path or parts.path.endswith("/"):
        raise FormatError(f"File server URL must name a file: {url}")
    return urlunsplit(urlsplit(url)._replace(fragment=""))
