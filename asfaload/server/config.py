"""Server configuration: flags override ASFALOAD_* environment variables, which override a TOML
file (``--config`` / ``ASFALOAD_CONFIG``), which overrides the defaults."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .. import layout
from ..errors import ConfigError
from ..forge import ForgeConfig, HttpConfig, parse_rewrites
from ..store.mirror import DEFAULT_MAX_PUSH_BYTES
from ..store.objects import DEFAULT_OBJECTS, check_objects

DEFAULT_MAX_BODY_BYTES = 1024 * 1024  # the upstream Asfaload server's limit
# The mirror's receive.maxInputSize, and the push body a server accepts on /mirror.git.
DEFAULT_GIT_MAX_PUSH_BYTES = DEFAULT_MAX_PUSH_BYTES


# Threads per gunicorn worker that run the app (REST, web pages, git requests).
APP_THREADS = 16


@dataclass(frozen=True)
class ServerConfig:
    data_dir: Path = Path(layout.DEFAULT_DATA_DIR)
    host: str = "127.0.0.1"
    port: int = 3000
    workers: int = 1
    # Hosts served by GitLab's API besides gitlab.com (self-hosted instances).
    gitlab_hosts: tuple[str, ...] = ()
    github_token: str | None = None
    gitlab_token: str | None = None
    # "PREFIX=REPLACEMENT,..." (docs/formats.md, "URL rewrites"); applied by the forge layer.
    url_rewrites: str | None = None
    allow_private_urls: bool = False
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    log_level: str = "info"
    # Seconds gunicorn waits for in-flight requests (and so their queued writes) on shutdown.
    graceful_timeout: int = 30
    # Seconds a client has to send a whole request (head and body); a connection that stalls
    # longer is closed, so stalled clients cannot hold the server (asfaload.server.front).
    request_timeout: int = 30
    # A read-only mirror (kept up to date by `asfaload mirror sync`) serves the public reads and
    # refuses every write: a local commit would fork it from the primary it follows.
    read_only: bool = False
    # What a read-only mirror names as the primary when it refuses a write (an http(s) URL);
    # unset, it names the upstream it syncs from, when that URL may be shown.
    primary_url: str | None = None
    # A mirror repository that lives elsewhere than ``<data_dir>/mirror.git`` (where a git host
    # keeps it); ``private/`` stays under the data dir.
    repo: Path | None = None
    # Git over HTTP (/mirror.git): the largest push body, the seconds one git program may run,
    # and how many may run at once in one worker.
    git_max_push_bytes: int = DEFAULT_GIT_MAX_PUSH_BYTES
    git_timeout: int = 600
    git_max_concurrent: int = 4
    # TUF online metadata (targets, snapshot, timestamp) is re-signed by the server once less
    # than this many seconds are left before it expires (capped at half the role's lifetime);
    # the scheduler looks at the mirror at least every `tuf_refresh_interval` seconds (0: off).
    tuf_refresh_margin: int = 6 * 3600
    tuf_refresh_interval: int = 300
    # The mirror writer's object store (asfaload.store.objects): "fast" or "libgit2".
    objects: str = DEFAULT_OBJECTS

    def __post_init__(self) -> None:
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.repo is not None:
            object.__setattr__(self, "repo", Path(self.repo))
        if self.git_max_push_bytes < 1024:
            raise ConfigError(f"Invalid git_max_push_bytes: {self.git_max_push_bytes}")
        if self.git_timeout < 1:
            raise ConfigError(f"Invalid git_timeout: {self.git_timeout}")
        if not 1 <= self.git_max_concurrent <= 256:
            raise ConfigError(f"Invalid git_max_concurrent: {self.git_max_concurrent}")
        if self.tuf_refresh_margin < 1:
            raise ConfigError(f"Invalid tuf_refresh_margin: {self.tuf_refresh_margin}")
        if self.tuf_refresh_interval < 0:
            raise ConfigError(f"Invalid tuf_refresh_interval: {self.tuf_refresh_interval}")
        check_objects(self.objects)
        if self.primary_url is not None:
            object.__setattr__(self, "primary_url", _advertised_url(self.primary_url))
        if not 0 < self.port < 65536:
            raise ConfigError(f"Invalid port: {self.port}")
        if not 1 <= self.workers <= 64:
            raise ConfigError(f"Invalid number of workers: {self.workers}")
        if self.max_body_bytes < 1024:
            raise ConfigError(f"Invalid max_body_bytes: {self.max_body_bytes}")
        if self.graceful_timeout < 0:
            raise ConfigError(f"Invalid graceful_timeout: {self.graceful_timeout}")
        if self.request_timeout < 1:
            raise ConfigError(f"Invalid request_timeout: {self.request_timeout}")
        object.__setattr__(
            self, "gitlab_hosts", tuple(h.strip().lower() for h in self.gitlab_hosts if h.strip())
        )

    @property
    def mirror_path(self) -> Path:
        return self.repo if self.repo is not None else self.data_dir / layout.MIRROR_REPO_DIR

    @property
    def private_dir(self) -> Path:
        return self.data_dir / layout.PRIVATE_DIR

    @property
    def nonce_db_path(self) -> Path:
        return self.private_dir / layout.NONCE_DB_FILE

    def forge_config(self) -> ForgeConfig:
        """Outbound HTTP settings: ours override the forge layer's ASFALOAD_* defaults."""
        http = HttpConfig.from_env(
            rewrites=parse_rewrites(self.url_rewrites), allow_private=self.allow_private_urls
        )
        return ForgeConfig(
            http=http,
            gitlab_hosts=self.gitlab_hosts,
            github_token=self.github_token,
            gitlab_token=self.gitlab_token,
        )

    @classmethod
    def load(
        cls,
        overrides: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        toml_path: Path | None = None,
    ) -> ServerConfig:
        """Merge defaults < TOML file < environment < ``overrides`` (None values are skipped)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        path = toml_path or (Path(env["ASFALOAD_CONFIG"]) if env.get("ASFALOAD_CONFIG") else None)
        if path is not None:
            values.update(_from_toml(path))
        values.update(_from_env(env))
        values.update({k: v for k, v in (overrides or {}).items() if v is not None})
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ServerConfig:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ConfigError(f"Unknown configuration keys: {', '.join(unknown)}")
        coerced: dict[str, Any] = {}
        for name, value in values.items():
            coerced[name] = _coerce(name, value)
        return replace(cls(), **coerced)


_INT_FIELDS = {
    "port",
    "workers",
    "max_body_bytes",
    "graceful_timeout",
    "request_timeout",
    "git_max_push_bytes",
    "git_timeout",
    "git_max_concurrent",
    "tuf_refresh_margin",
    "tuf_refresh_interval",
}


def _coerce(name: str, value: Any) -> Any:
    try:
        if name in ("data_dir", "repo"):
            return None if value is None else Path(str(value))
        if name in _INT_FIELDS:
            if isinstance(value, bool):
                raise ValueError(value)
            return int(value)
        if name in ("allow_private_urls", "read_only"):
            return _parse_bool(value)
        if name == "gitlab_hosts":
            if isinstance(value, str):
                return tuple(v for v in value.split(","))
            return tuple(str(v) for v in value)
        return None if value is None else str(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Invalid value for {name}: {value!r}") from exc


def _advertised_url(value: str) -> str:
    """An http(s) URL fit to show anyone: no credentials, query, fragment or control
    characters."""
    parts = urlsplit(value.strip())
    try:
        parts.port  # noqa: B018 (raises for a port that is no port)
    except ValueError:
        raise ConfigError(f"Invalid primary_url: {value!r}") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.query
        or parts.fragment
        or any(ord(c) < 0x21 or c == "\x7f" for c in value.strip())
    ):
        raise ConfigError(
            "Invalid primary_url: give an http(s) URL without credentials, query or fragment"
        )
    return value.strip()


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(value)


_ENV = {
    "ASFALOAD_DATA_DIR": "data_dir",
    "ASFALOAD_HOST": "host",
    "ASFALOAD_PORT": "port",
    "ASFALOAD_SERVER_PORT": "port",  # the upstream Asfaload server's name
    "ASFALOAD_WORKERS": "workers",
    "ASFALOAD_GITLAB_HOSTS": "gitlab_hosts",
    "ASFALOAD_GITHUB_API_KEY": "github_token",
    "ASFALOAD_GITLAB_API_KEY": "gitlab_token",
    "ASFALOAD_URL_REWRITES": "url_rewrites",
    "ASFALOAD_ALLOW_PRIVATE_URLS": "allow_private_urls",
    "ASFALOAD_MAX_BODY_BYTES": "max_body_bytes",
    "ASFALOAD_LOG_LEVEL": "log_level",
    "ASFALOAD_GRACEFUL_TIMEOUT": "graceful_timeout",
    "ASFALOAD_REQUEST_TIMEOUT": "request_timeout",
    "ASFALOAD_READ_ONLY": "read_only",
    "ASFALOAD_PRIMARY_URL": "primary_url",
    "ASFALOAD_REPO": "repo",
    "ASFALOAD_MAX_PUSH_BYTES": "git_max_push_bytes",
    "ASFALOAD_GIT_TIMEOUT": "git_timeout",
    "ASFALOAD_GIT_MAX_CONCURRENT": "git_max_concurrent",
    "ASFALOAD_TUF_REFRESH_MARGIN": "tuf_refresh_margin",
    "ASFALOAD_TUF_REFRESH_INTERVAL": "tuf_refresh_interval",
    "ASFALOAD_OBJECTS": "objects",
}


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    return {key: env[name] for name, key in _ENV.items() if env.get(name)}


def _from_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"Cannot read configuration file {path.name}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"Invalid configuration file {path.name}: {exc}") from exc
    # Accept both a flat file and one with a [server] table.
    section = data.get("server", data)
    if not isinstance(section, dict):
        raise ConfigError("Invalid configuration file: [server] must be a table")
    return dict(section)
