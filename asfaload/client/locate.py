"""Where the release index of a download URL lives on the mirror (``docs/formats.md``).

- GitHub: ``https://github.com/o/r/releases/download/<tag>/<file>`` →
  ``https/github.com/443/o/r/releases/tag/<tag>/asfaload.index.json`` (owner and repo case-folded);
- GitLab: ``https://gitlab.com/<ns…>/<project>/-/releases/<tag>/downloads/<file>`` →
  ``https/gitlab.com/443/<ns…>/<project>/-/releases/<tag>/asfaload.index.json``;
- file server and checksum mode: the file's own directory,
  ``<scheme>/<host>/<port>/<dir>/asfaload.index.json``.

The path rules themselves live in :mod:`asfaload.layout`; this module adds forge detection with
the client's configuration (``--type``, ``ASFALOAD_GITLAB_HOSTS``). Pure: the URL is an identity
here, so URL rewrites are never applied.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .. import layout
from ..errors import FormatError

FORGE_TYPES = layout.FORGES
GITLAB_HOSTS_ENV = "ASFALOAD_GITLAB_HOSTS"


@dataclass(frozen=True)
class ArtifactLocation:
    url: str
    forge: str
    file_name: str  # percent-decoded last path segment
    index_path: str  # mirror path of the release index


def configured_gitlab_hosts() -> tuple[str, ...]:
    raw = os.environ.get(GITLAB_HOSTS_ENV, "")
    return tuple(h.strip().lower() for h in raw.split(",") if h.strip())


def locate(url: str, forge: str | None = None) -> ArtifactLocation:
    """Map a download URL to its release index path; ``forge`` overrides detection (``--type``)."""
    if forge is not None and forge not in FORGE_TYPES:
        raise FormatError(
            f"Unknown forge type {forge!r} (expected one of {', '.join(FORGE_TYPES)})"
        )
    hosts = configured_gitlab_hosts()
    try:
        host = urlsplit(url).hostname or ""
    except ValueError as exc:
        raise FormatError(f"Invalid URL: {url}") from exc
    kind = forge or layout.detect_forge(host, hosts)
    path = urlsplit(url).path.rstrip("/")
    if not path or "/" not in path:
        raise FormatError(f"URL does not name a file: {url}")
    file_name = unquote(path.rsplit("/", 1)[-1])
    if not file_name:
        raise FormatError(f"URL does not name a file: {url}")
    if kind == "github" and "/releases/download/" not in path:
        raise FormatError(
            "Not a GitHub release download URL "
            f"(expected https://github.com/OWNER/REPO/releases/download/TAG/FILE): {url}"
        )
    if kind == "gitlab" and "/-/releases/" not in path:
        raise FormatError(
            "Not a GitLab release download URL "
            f"(expected https://gitlab.com/NAMESPACE/PROJECT/-/releases/TAG/downloads/FILE): {url}"
        )
    index_path = layout.release_index_path(url, kind, gitlab_hosts=hosts)
    return ArtifactLocation(url=url, forge=kind, file_name=file_name, index_path=index_path)
