"""GitHub: signers files from raw URLs, releases from the REST API.

Hosts are an exact allow-list (``github.com``, ``raw.githubusercontent.com``; never a suffix
match). A blob URL ``https://github.com/o/r/blob/<ref>/<path>`` is read from
``https://raw.githubusercontent.com/o/r/<ref>/<path>``: everything after ``blob/`` is carried over
verbatim, so refs containing '/' work (the reference split the ref as one segment).
"""

from __future__ import annotations

from urllib.parse import SplitResult, quote, unquote, urlsplit

from ..errors import ForgeError, FormatError
from .http import HttpClient, check_url
from .results import Asset, ReleaseAssets, check_file_name

HOST = "github.com"
RAW_HOST = "raw.githubusercontent.com"
HOSTS = frozenset({HOST, RAW_HOST})
API = "https://api.github.com"
_HEX = frozenset("0123456789abcdef")


def _segments(parts: SplitResult, url: str) -> list[str]:
    segs = parts.path.split("/")[1:]
    if any(s == "" for s in segs):
        raise FormatError(f"Invalid GitHub URL (empty path segment): {url}")
    return segs


def _check_github(url: str) -> SplitResult:
    parts = check_url(url)
    host = (parts.hostname or "").lower()
    if host not in HOSTS or parts.scheme != "https" or parts.port not in (None, 443):
        raise FormatError(
            f"Not a GitHub URL (expected https://{HOST}/ or https://{RAW_HOST}/): {url}"
        )
    return parts


def raw_url(url: str) -> str:
    """The raw-content URL of a GitHub blob or raw URL (the fragment is dropped)."""
    parts = _check_github(url)
    segs = _segments(parts, url)
    query = f"?{parts.query}" if parts.query else ""
    if (parts.hostname or "").lower() == RAW_HOST:
        if len(segs) < 4:
            raise FormatError(f"GitHub raw URL needs /<owner>/<repo>/<ref>/<path>: {url}")
        return f"https://{RAW_HOST}{parts.path}{query}"
    if len(segs) < 5 or segs[2] != "blob":
        raise FormatError(f"GitHub file URL needs /<owner>/<repo>/blob/<ref>/<path>: {url}")
    rest = "/".join([segs[0], segs[1], *segs[3:]])
    return f"https://{RAW_HOST}/{rest}{query}"


def file_ref(url: str) -> str:
    """The first segment of the ref in a GitHub blob or raw file URL, percent-decoded (a ref
    with '/' in it spans more segments; a commit id never does)."""
    raw = raw_url(url)
    return unquote(urlsplit(raw).path.split("/")[3])


def parse_release_url(url: str) -> tuple[str, str, str]:
    """``(owner, repo, tag)`` of ``https://github.com/<o>/<r>/releases/tag/<tag>``."""
    parts = _check_github(url)
    if (parts.hostname or "").lower() != HOST:
        raise FormatError(f"GitHub release URL must be on {HOST}: {url}")
    path = parts.path[:-1] if parts.path.endswith("/") else parts.path
    segs = path.split("/")[1:]
    if len(segs) < 5 or segs[2:4] != ["releases", "tag"] or any(s == "" for s in segs):
        raise FormatError(f"GitHub release URL needs /<owner>/<repo>/releases/tag/<tag>: {url}")
    tag = unquote("/".join(segs[4:]))
    return unquote(segs[0]), unquote(segs[1]), tag


def _api_headers(token: str | None) -> dict[str, str]:
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _digest(value: object, name: str) -> tuple[str, str] | None:
    """``(algo, hex)`` from an asset's ``digest`` field, or None when it is absent or unknown."""
    if not isinstance(value, str) or ":" not in value:
        return None
    kind, _, hex_part = value.partition(":")
    algo = {"sha256": "Sha256", "sha512": "Sha512"}.get(kind.lower())
    if algo is None:
        return None
    hex_part = hex_part.lower()
    if len(hex_part) != (64 if algo == "Sha256" else 128) or not set(hex_part) <= _HEX:
        raise ForgeError(f"GitHub returned a malformed digest for asset {name}")
    return algo, hex_part


def _check_download_url(value: object, owner: str, repo: str, name: str) -> str:
    # The index source must be this release's own asset URL: clients map
    # .../releases/download/<tag>/<file> back to the index, and nothing else belongs there.
    if not isinstance(value, str):
        raise ForgeError(f"GitHub asset {name} has no browser_download_url")
    parts = urlsplit(value)
    segs = parts.path.split("/")[1:]
    ok = (
        parts.scheme == "https"
        and (parts.hostname or "").lower() == HOST
        and len(segs) >= 6
        and segs[0].lower() == owner.lower()
        and segs[1].lower() == repo.lower()
        and segs[2:4] == ["releases", "download"]
        and unquote(segs[-1]) == name
    )
    if not ok:
        raise ForgeError(f"GitHub asset {name} has an unexpected download URL: {value[:200]}")
    return value


def fetch_release(http: HttpClient, url: str, token: str | None = None) -> ReleaseAssets:
    """The assets of a GitHub release page URL, with their hashes.

    An asset's ``digest`` is used when GitHub provides one; otherwise the asset is downloaded
    and hashed (SHA-256) while streaming (never silently dropped)."""
    owner, repo, tag = parse_release_url(url)
    api = (
        f"{API}/repos/{quote(owner, safe='')}/{quote(repo, safe='')}"
        f"/releases/tags/{quote(tag, safe='')}"
    )
    release = http.get_json(api, headers=_api_headers(token))
    if not isinstance(release, dict):
        raise ForgeError(f"Unexpected GitHub release answer for {url}")
    published = release.get("published_at") or release.get("created_at")
    if not isinstance(published, str):
        raise ForgeError(f"GitHub release has no publication date: {url}")
    raw_assets = release.get("assets")
    if not isinstance(raw_assets, list) or not raw_assets:
        raise ForgeError(f"GitHub release has no assets: {url}")
    files = []
    for item in raw_assets:
        if not isinstance(item, dict):
            raise ForgeError(f"Unexpected GitHub asset entry in {url}")
        name = check_file_name(item.get("name"), "GitHub release")
        source = _check_download_url(item.get("browser_download_url"), owner, repo, name)
        known: tuple[str, str] | None = _digest(item.get("digest"), name)
        if known is None:
            hex_digest, _size = http.hash(source, "sha256")
            known = ("Sha256", hex_digest)
        files.append(Asset(name, known[0], known[1], source))
    return ReleaseAssets("github", url, tag, published, tuple(files))
