"""Forges: outbound HTTP to GitHub, GitLab and file servers (see docs/formats.md, "Outbound HTTP").

Public API::

    forges = Forges()                       # config from the environment, or Forges(ForgeConfig(...))
    forges.detect(url)                      # "github" | "gitlab" | "fileserver" (exact hosts)
    forges.retrieval_url(url)               # raw-content URL of a signers file URL
    forges.fetch_signers_file(url)          # FetchedFile(raw, url, retrieval_url, kind)
    forges.fetch_release(url)               # ReleaseAssets for a GitHub/GitLab release page URL
    forges.fetch_checksum_files([urls])     # ReleaseAssets for checksum files (strict parser)

Every URL in the results is the original URL; ``ASFALOAD_URL_REWRITES`` only changes where the
sockets go. Errors: ``FormatError`` (bad URL or content), ``ForbiddenURLError`` (private address),
``ForgeError`` (the forge failed, timed out, answered badly or too much).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ..errors import FormatError, SignersFileError
from ..layout import detect_forge
from . import checksums, fileserver, github, gitlab
from .checksums import ChecksumEntry, parse_checksums
from .http import (
    SIGNERS_FILE_MAX_BYTES,
    HttpClient,
    HttpConfig,
    ResponseTooLargeError,
    Rewrite,
    apply_rewrites,
    parse_rewrites,
)
from .results import KINDS, METADATA_KINDS, Asset, FetchedFile, ReleaseAssets

__all__ = [
    "KINDS",
    "METADATA_KINDS",
    "SIGNERS_FILE_MAX_BYTES",
    "Asset",
    "ChecksumEntry",
    "FetchedFile",
    "ForgeConfig",
    "Forges",
    "HttpClient",
    "HttpConfig",
    "ReleaseAssets",
    "Rewrite",
    "apply_rewrites",
    "fetch_checksum_files",
    "fetch_release",
    "fetch_signers_file",
    "parse_checksums",
    "parse_rewrites",
]

ENV_GITLAB_HOSTS = "ASFALOAD_GITLAB_HOSTS"
ENV_GITHUB_TOKEN = "ASFALOAD_GITHUB_API_KEY"
ENV_GITLAB_TOKEN = "ASFALOAD_GITLAB_API_KEY"


def _hosts(spec: str | None) -> tuple[str, ...]:
    return tuple(h.strip().lower() for h in (spec or "").split(",") if h.strip())


@dataclass(frozen=True)
class ForgeConfig:
    http: HttpConfig = field(default_factory=HttpConfig)
    # Self-hosted GitLab host names (gitlab.com is always GitLab).
    gitlab_hosts: tuple[str, ...] = ()
    github_token: str | None = field(default=None, repr=False)
    gitlab_token: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "gitlab_hosts", tuple(h.lower() for h in self.gitlab_hosts))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **http: Any) -> ForgeConfig:
        env = os.environ if environ is None else environ
        return cls(
            http=HttpConfig.from_env(env, **http),
            gitlab_hosts=_hosts(env.get(ENV_GITLAB_HOSTS)),
            github_token=env.get(ENV_GITHUB_TOKEN) or None,
            gitlab_token=env.get(ENV_GITLAB_TOKEN) or None,
        )


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise FormatError(f"Unknown forge type {kind!r} (expected one of {', '.join(KINDS)})")
    return kind


def _check_json_extension(raw: str) -> None:
    name = urlsplit(raw).path.rpartition("/")[2]
    ext = name.rpartition(".")[2] if "." in name else ""
    if ext.lower() != "json":
        got = f".{ext}" if ext else "no extension"
        raise FormatError(f"Signers file must have extension in [ json ], got {got}")


_COMMIT_ID = re.compile(r"[0-9a-fA-F]{40}|[0-9a-fA-F]{64}")


def _check_not_a_commit(url: str, kind: str) -> None:
    ref = github.file_ref(url) if kind == "github" else gitlab.file_ref(url)
    if _COMMIT_ID.fullmatch(ref):
        name = "GitHub" if kind == "github" else "GitLab"
        raise FormatError(
            f"Signers file URL must name a branch or tag, not the commit {ref}: {name} serves"
            f" commits of any fork under the repository's URLs, so use a branch or tag of the"
            f" project: {url}"
        )


class Forges:
    """Forge access under one configuration."""

    def __init__(self, config: ForgeConfig | None = None) -> None:
        self.config = config if config is not None else ForgeConfig.from_env()
        self.http = HttpClient(self.config.http)

    def detect(self, url: str) -> str:
        host = urlsplit(url).hostname or ""
        return detect_forge(host, self.config.gitlab_hosts)

    def retrieval_url(self, url: str, kind: str | None = None) -> str:
        """Where the bytes of a signers file URL are read from (blob URL → raw URL)."""
        kind = _check_kind(kind or self.detect(url))
        if kind == "github":
            return github.raw_url(url)
        if kind == "gitlab":
            return gitlab.raw_url(url)
        return fileserver.raw_url(url)

    def fetch_signers_file(self, url: str, kind: str | None = None) -> FetchedFile:
        """The signers file at ``url``, byte for byte, at most 64 KiB (configurable).

        On GitHub and GitLab the URL must name a branch or tag: both serve a fork's commits
        under the parent repository's URLs, so a file at a commit id is not proof that the
        project itself published it.
        """
        kind = _check_kind(kind or self.detect(url))
        raw = self.retrieval_url(url, kind)
        if kind in ("github", "gitlab"):
            _check_not_a_commit(url, kind)
        _check_json_extension(raw)
        cap = self.config.http.signers_max_bytes
        try:
            fetched = self.http.get(raw, max_bytes=cap)
        except ResponseTooLargeError:
            # The user chose this file: too big is a bad signers file (400), not a forge failure.
            raise SignersFileError(
                f"Invalid signers file: {url} is larger than the limit of {cap} bytes"
            ) from None
        return FetchedFile(fetched.content, url, raw, kind)

    def fetch_release(self, url: str, kind: str | None = None) -> ReleaseAssets:
        """The files of a GitHub or GitLab release page URL, with their hashes."""
        kind = _check_kind(kind or self.detect(url))
        if kind == "github":
            return github.fetch_release(self.http, url, self.config.github_token)
        if kind == "gitlab":
            host = (urlsplit(url).hostname or "").lower()
            # The token is only ever sent to a GitLab the operator named.
            trusted = host == gitlab.HOST or host in self.config.gitlab_hosts
            token = self.config.gitlab_token if trusted else None
            return gitlab.fetch_release(self.http, url, token)
        raise FormatError(
            "A file server has no releases: register its checksum files instead (csum_files)"
        )

    def fetch_checksum_files(self, urls: Sequence[str]) -> ReleaseAssets:
        """Checksum-files mode: all URLs share origin and parent directory (strict parser)."""
        return checksums.fetch_checksum_files(self.http, urls)


def fetch_signers_file(url: str, kind: str | None = None) -> FetchedFile:
    return Forges().fetch_signers_file(url, kind)


def fetch_release(url: str, kind: str | None = None) -> ReleaseAssets:
    return Forges().fetch_release(url, kind)


def fetch_checksum_files(urls: Sequence[str]) -> ReleaseAssets:
    return Forges().fetch_checksum_files(urls)
