"""GitLab (gitlab.com and configured self-hosted hosts): raw files and releases.

Project paths are everything before the first ``-`` segment (namespaces nest). The raw URL keeps
the user's scheme, host and port, so self-hosted instances work. Releases come from
``api/v4/projects/<url-encoded path>/releases/<tag>``; the real API returns
``assets: {count, sources, links: [...]}`` (an object, not a list). Link assets
carry no digest, so each is downloaded and hashed while streaming.
"""

from __future__ import annotations

from urllib.parse import SplitResult, quote, unquote, urlsplit

from ..errors import ForgeError, FormatError
from .http import HttpClient, check_url
from .results import Asset, ReleaseAssets, check_file_name

HOST = "gitlab.com"


def _split(url: str) -> tuple[SplitResult, list[str], list[str]]:
    """``(parts, project segments, segments after '-')`` of a GitLab project URL."""
    parts = check_url(url)
    path = parts.path[:-1] if parts.path.endswith("/") else parts.path
    segs = path.split("/")[1:]
    if any(s == "" for s in segs):
        raise FormatError(f"Invalid GitLab URL (empty path segment): {url}")
    if "-" not in segs:
        raise FormatError(f"GitLab URL needs a '/-/' part: {url}")
    dash = segs.index("-")
    if dash < 2:
        raise FormatError(f"GitLab URL needs a namespace and a project: {url}")
    return parts, segs[:dash], segs[dash + 1 :]


def raw_url(url: str) -> str:
    """``<base>/<ns…>/<p>/-/raw/<ref>/<path>`` for a ``-/raw/`` or ``-/blob/`` URL."""
    parts, project, rest = _split(url)
    if len(rest) < 3 or rest[0] not in ("raw", "blob"):
        raise FormatError(
            f"GitLab file URL needs /-/blob/<ref>/<path> or /-/raw/<ref>/<path>: {url}"
        )
    query = f"?{parts.query}" if parts.query else ""
    tail = "/".join([*project, "-", "raw", *rest[1:]])
    return f"{parts.scheme}://{parts.netloc}/{tail}{query}"


def file_ref(url: str) -> str:
    """The first segment of the ref in a GitLab ``-/blob/`` or ``-/raw/`` file URL,
    percent-decoded."""
    _, _, rest = _split(raw_url(url))
    return unquote(rest[1])


def parse_release_url(url: str) -> tuple[str, str, str]:
    """``(base URL, project path, tag)`` of ``<base>/<ns…>/<p>/-/releases/<tag>`` (or ``-/tags/``)."""
    parts, project, rest = _split(url)
    if len(rest) < 2 or rest[0] not in ("releases", "tags"):
        raise FormatError(f"GitLab release URL needs /-/releases/<tag>: {url}")
    tag_parts = rest[1:]
    # A download URL of a release asset names the release too.
    if "downloads" in tag_parts:
        tag_parts = tag_parts[: tag_parts.index("downloads")]
    if not tag_parts:
        raise FormatError(f"GitLab release URL needs a tag: {url}")
    base = f"{parts.scheme}://{parts.netloc}"
    return base, "/".join(unquote(s) for s in project), unquote("/".join(tag_parts))


def _file_name(link_url: str) -> str:
    last = urlsplit(link_url).path.rstrip("/").rpartition("/")[2]
    return check_file_name(unquote(last), "GitLab release")


def fetch_release(http: HttpClient, url: str, token: str | None = None) -> ReleaseAssets:
    """The link assets of a GitLab release page URL, hashed (SHA-256) by streaming each one."""
    base, project, tag = parse_release_url(url)
    api = f"{base}/api/v4/projects/{quote(project, safe='')}/releases/{quote(tag, safe='')}"
    headers = {"PRIVATE-TOKEN": token} if token else {}
    release = http.get_json(api, headers=headers)
    if not isinstance(release, dict):
        raise ForgeError(f"Unexpected GitLab release answer for {url}")
    published = release.get("released_at") or release.get("created_at")
    if not isinstance(published, str):
        raise ForgeError(f"GitLab release has no release date: {url}")
    assets = release.get("assets")
    links = assets.get("links") if isinstance(assets, dict) else None
    if not isinstance(links, list) or not links:
        raise ForgeError(f"GitLab release has no asset links: {url}")
    files = []
    for link in links:
        if not isinstance(link, dict):
            raise ForgeError(f"Unexpected GitLab asset link in {url}")
        source = link.get("direct_asset_url") or link.get("url")
        if not isinstance(source, str):
            raise ForgeError(f"GitLab asset link without a URL in {url}")
        check_url(source)
        name = _file_name(source)
        hex_digest, _size = http.hash(source, "sha256")
        files.append(Asset(name, "Sha256", hex_digest, source))
    return ReleaseAssets("gitlab", url, tag, published, tuple(files))
