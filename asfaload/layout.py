"""Every path name of the mirror, and project ids from forge URLs. Pure: no I/O, no network.

No other module spells a suffix or a directory name; they call the builders here. A *project id*
``P`` is ``<scheme>/<host>/<port>/<path...>``, e.g. ``https/github.com/443/acme/tool``.
Inside a project::

    P/asfaload.signers.history.json
    P/asfaload.signers[.pending]/asfaload.signers.json              (raw forge bytes)
    P/asfaload.signers[.pending]/asfaload.signers.json.metadata.json
    P/asfaload.signers[.pending]/asfaload.signers.json.kind         ("initial" | "update")
    P/asfaload.signers[.pending]/<file>.signatures.json[.pending]   (for the file and its metadata)
    P/releases/tag/<tag>/asfaload.index.json                        (GitHub)
    P/-/releases/<tag>/asfaload.index.json                          (GitLab)
    P/<checksum files' parent path>/asfaload.index.json             (checksum mode)

Every subject ``X`` may carry ``X.signatures.json.pending`` -> ``X.signatures.json`` and
``X.signers.json``; revocations use ``X.revocation.json[.pending]`` and friends. TUF lives
under ``tuf/<admin>/<app>/``. Project ids start with ``http``/``https``, so ``tuf`` never clashes.

Paths are relative, ``/``-separated and clean (:func:`asfaload.rules.tree.check_path`): the
builders refuse empty, ``.`` and ``..`` segments and dot-prefixed names, so nothing can reach
``.git`` or escape the mirror.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from urllib.parse import SplitResult, unquote, urlsplit

from .errors import FormatError


def check_path(path: str) -> str:
    """Return ``path`` if it is a clean relative mirror path, else raise FormatError.

    Clean means: '/'-separated, no empty, '.' or '..' segments, no leading dot segment
    (so '.git' and friends are unreachable), no backslash, and nothing ``str.isprintable``
    refuses: no control character (NUL, ESC: a path is printed to terminals), no invisible
    format character or separator other than the space.
    """
    if not isinstance(path, str) or not _is_clean(path):
        raise FormatError(f"Invalid path: {path!r}")
    return path


def _is_clean(path: str) -> bool:
    # No empty segment (leading, trailing or doubled "/", or an empty path), no segment that
    # starts with "." ("." and ".." included), no backslash, printable: tests in C.
    # The rules check paths dozens of times per operation, inside the writer, over more
    # distinct paths than a memo could hold.
    return (
        bool(path)
        and path[0] not in "./"
        and path[-1] != "/"
        and "/." not in path
        and "//" not in path
        and "\\" not in path
        and path.isprintable()
    )


# --- names --------------------------------------------------------------------------------------
SIGNERS_DIR = "asfaload.signers"
PENDING_SIGNERS_DIR = "asfaload.signers.pending"
SIGNERS_FILE = "asfaload.signers.json"
METADATA_FILE = SIGNERS_FILE + ".metadata.json"
# The kind of a signers request is stored, never guessed from the surrounding tree.
KIND_FILE = SIGNERS_FILE + ".kind"
HISTORY_FILE = "asfaload.signers.history.json"
INDEX_FILE = "asfaload.index.json"
# A hidden signers dir on a file server is skipped like the plain one.
HIDDEN_SIGNERS_DIR = "." + SIGNERS_DIR

SIGNATURES_SUFFIX = ".signatures.json"
PENDING_SUFFIX = ".pending"
PENDING_SIGNATURES_SUFFIX = SIGNATURES_SUFFIX + PENDING_SUFFIX
LOCAL_SIGNERS_SUFFIX = ".signers.json"
REVOCATION_SUFFIX = ".revocation.json"
PENDING_REVOCATION_SUFFIX = REVOCATION_SUFFIX + PENDING_SUFFIX
REVOKED_SUFFIX = ".revoked"

TUF_DIR = "tuf"
TUF_TIMESTAMP_FILE = "timestamp.json"
TUF_PENDING_ROOT_FILE = "root.json.pending"

FORGES = ("github", "gitlab", "fileserver")
GITHUB_HOSTS = frozenset({"github.com", "raw.githubusercontent.com"})
GITLAB_HOSTS = frozenset({"gitlab.com"})
DEFAULT_PORTS = {"http": 80, "https": 443}


# --- generic path helpers -------------------------------------------------------------------------
def join(*parts: str) -> str:
    """Join non-empty parts with '/' and check the result is a clean mirror path."""
    return check_path("/".join(p for p in parts if p != ""))


def parent(path: str) -> str:
    """The parent directory of ``path`` ('' for a top-level name)."""
    return path.rsplit("/", 1)[0] if "/" in path else ""


def basename(path: str) -> str:
    return path.rsplit("/", 1)[-1]


def ancestors(path: str) -> list[str]:
    """Proper ancestor directories of ``path``, nearest first, ending with '' (the root)."""
    out: list[str] = []
    cur = path
    while cur:
        cur = parent(cur)
        out.append(cur)
    return out


def _suffixed(path: str, suffix: str) -> str:
    return check_path(check_path(path) + suffix)


def _strip_one(path: str, suffix: str, what: str) -> str:
    # Strip exactly ONE suffix: stripping repeatedly, which maps
    # "X.signatures.json.pending.signatures.json.pending" to X instead of its real subject.
    check_path(path)
    if not path.endswith(suffix) or basename(path) == suffix.lstrip("."):
        raise FormatError(f"Not a {what} path: {path!r}")
    return check_path(path[: -len(suffix)])


# --- per-subject names ----------------------------------------------------------------------------
def signatures_path(subject: str) -> str:
    """``X.signatures.json``: the complete signature set of X."""
    return _suffixed(subject, SIGNATURES_SUFFIX)


def pending_signatures_path(subject: str) -> str:
    """``X.signatures.json.pending``: the signatures collected so far (the pending request)."""
    return _suffixed(subject, PENDING_SIGNATURES_SUFFIX)


def local_signers_path(subject: str) -> str:
    """``X.signers.json``: copy of the signers file that governed X when X completed."""
    return _suffixed(subject, LOCAL_SIGNERS_SUFFIX)


def revocation_path(subject: str) -> str:
    return _suffixed(subject, REVOCATION_SUFFIX)


def pending_revocation_path(subject: str) -> str:
    return _suffixed(subject, PENDING_REVOCATION_SUFFIX)


def revocation_signatures_path(subject: str) -> str:
    return signatures_path(revocation_path(subject))


def pending_revocation_signatures_path(subject: str) -> str:
    return pending_signatures_path(pending_revocation_path(subject))


def revocation_signers_path(subject: str) -> str:
    return local_signers_path(revocation_path(subject))


def revoked_signatures_path(subject: str) -> str:
    """``X.signatures.json.revoked``: where X's complete signatures go when X is revoked."""
    return _suffixed(signatures_path(subject), REVOKED_SUFFIX)


def revoked_pending_signatures_path(subject: str) -> str:
    return _suffixed(pending_signatures_path(subject), REVOKED_SUFFIX)


def subject_of_pending_signatures(path: str) -> str:
    """``X`` from ``X.signatures.json.pending`` (one suffix only)."""
    return _strip_one(path, PENDING_SIGNATURES_SUFFIX, "pending signatures")


def subject_of_signatures(path: str) -> str:
    """``X`` from ``X.signatures.json`` (one suffix only)."""
    return _strip_one(path, SIGNATURES_SUFFIX, "signatures")


def subject_of_pending_revocation(path: str) -> str:
    """``A`` from ``A.revocation.json.pending``."""
    return _strip_one(path, PENDING_REVOCATION_SUFFIX, "pending revocation")


def subject_of_revocation(path: str) -> str:
    """``A`` from ``A.revocation.json`` (a finalised revocation document)."""
    return _strip_one(path, REVOCATION_SUFFIX, "revocation")


def _names_a_subject(path: str, suffix: str) -> bool:
    # A file named just the suffix (without the dot) has no subject.
    return path.endswith(suffix) and basename(path) != suffix[1:]


def is_pending_revocation(path: str) -> bool:
    return _names_a_subject(path, PENDING_REVOCATION_SUFFIX)


def is_revocation(path: str) -> bool:
    """True for ``A.revocation.json`` (a finalised revocation document)."""
    return _names_a_subject(path, REVOCATION_SUFFIX)


# --- signers files of a project ---------------------------------------------------------------------
def signers_dir(project: str, *, pending: bool = False) -> str:
    return join(project, PENDING_SIGNERS_DIR if pending else SIGNERS_DIR)


def signers_file_path(project: str, *, pending: bool = False) -> str:
    return join(signers_dir(project, pending=pending), SIGNERS_FILE)


def metadata_path(project: str, *, pending: bool = False) -> str:
    return join(signers_dir(project, pending=pending), METADATA_FILE)


def kind_path(project: str, *, pending: bool = False) -> str:
    return join(signers_dir(project, pending=pending), KIND_FILE)


def history_path(project: str) -> str:
    return join(project, HISTORY_FILE)


def signers_project_of(path: str) -> tuple[str, bool] | None:
    """``(P, pending)`` when ``path`` lies directly inside ``P``'s active or pending signers dir."""
    check_path(path)
    d = parent(path)
    name = basename(d)
    if name not in (SIGNERS_DIR, PENDING_SIGNERS_DIR) or "/" not in d:
        return None
    return parent(d), name == PENDING_SIGNERS_DIR


def in_signers_dir(path: str) -> bool:
    """True when any segment of ``path`` is a signers dir name (active or pending)."""
    return any(seg in (SIGNERS_DIR, PENDING_SIGNERS_DIR) for seg in path.split("/"))


# --- release indexes --------------------------------------------------------------------------------
def _clean_segments(value: str, what: str) -> str:
    try:
        return check_path(value)
    except FormatError:
        raise FormatError(f"Invalid {what}: {value!r}") from None


def github_release_index_path(project: str, tag: str) -> str:
    """``P/releases/tag/<tag>/asfaload.index.json`` (a tag may hold '/', each part must be clean)."""
    return join(project, "releases", "tag", _clean_segments(tag, "tag"), INDEX_FILE)


def gitlab_release_index_path(project: str, tag: str) -> str:
    """``P/-/releases/<tag>/asfaload.index.json``."""
    return join(project, "-", "releases", _clean_segments(tag, "tag"), INDEX_FILE)


def index_path_in(directory: str) -> str:
    return join(directory, INDEX_FILE)


def checksum_index_path(urls: Sequence[str]) -> str:
    """Index path for checksum-files mode: ``<prefix>/<parent path>/asfaload.index.json``.

    All URLs must share origin and parent directory.
    """
    if not urls:
        raise FormatError("At least one checksums file URL is required")
    dirs = set()
    for url in urls:
        parts = _parse_url(url)
        segs = _path_segments(parts)
        if not segs:
            raise FormatError(f"Checksums URL has no file name: {url!r}")
        dirs.add(join(url_prefix(url), *segs[:-1]))
    if len(dirs) != 1:
        raise FormatError("All checksums files must share the same origin and parent directory")
    return index_path_in(dirs.pop())


def release_index_path(
    url: str, forge: str | None = None, *, gitlab_hosts: Collection[str] = ()
) -> str:
    """Index path for a release page URL (GitHub ``…/releases/tag/<tag>``, GitLab
    ``…/-/releases/<tag>``) or for a download URL of one of its assets
    (``…/releases/download/<tag>/<file>``, ``…/-/releases/<tag>/downloads/<file…>``).
    For a file server, the index sits beside the file (checksum mode)."""
    parts = _parse_url(url)
    kind = forge or detect_forge(parts.hostname or "", gitlab_hosts)
    _check_forge(kind)
    segs = _path_segments(parts)
    project = project_id(url, kind, gitlab_hosts=gitlab_hosts)
    if kind == "github":
        rest = segs[2:]
        if len(rest) >= 3 and rest[0] == "releases" and rest[1] in ("tag", "download"):
            tag_parts = rest[2:] if rest[1] == "tag" else rest[2:-1]
            if tag_parts:
                return github_release_index_path(project, "/".join(tag_parts))
        raise FormatError(f"Not a GitHub release URL: {url!r}")
    if kind == "gitlab":
        dash = segs.index("-")
        rest = segs[dash + 1 :]
        if len(rest) >= 2 and rest[0] in ("releases", "tags"):
            tag_parts = rest[1:]
            if "downloads" in tag_parts:
                tag_parts = tag_parts[: tag_parts.index("downloads")]
            if tag_parts:
                return gitlab_release_index_path(project, "/".join(tag_parts))
        raise FormatError(f"Not a GitLab release URL: {url!r}")
    return checksum_index_path([url])


# --- TUF ------------------------------------------------------------------------------------------------
def tuf_dir(admin: str, app: str) -> str:
    return join(TUF_DIR, _clean_segment(admin, "TUF admin"), _clean_segment(app, "TUF app"))


TUF_VERSIONED_ROLES = ("root", "targets", "snapshot")
_TUF_VERSIONED_RE = re.compile(r"^([1-9][0-9]{0,9})\.(root|targets|snapshot)\.json$")


def tuf_versioned_path(admin: str, app: str, role: str, version: int) -> str:
    """``tuf/<admin>/<app>/<N>.<role>.json`` for root, targets and snapshot."""
    if role not in TUF_VERSIONED_ROLES:
        raise FormatError(f"Unknown versioned TUF role: {role!r}")
    if version < 1:
        raise FormatError(f"Invalid TUF version: {version}")
    return join(tuf_dir(admin, app), f"{version}.{role}.json")


def parse_tuf_versioned_name(name: str) -> tuple[int, str] | None:
    """``(N, role)`` for a file name ``<N>.<role>.json`` in a TUF dir, else None."""
    m = _TUF_VERSIONED_RE.match(name)
    return None if m is None else (int(m.group(1)), m.group(2))


def tuf_timestamp_path(admin: str, app: str) -> str:
    return join(tuf_dir(admin, app), TUF_TIMESTAMP_FILE)


def tuf_pending_root_path(admin: str, app: str) -> str:
    return join(tuf_dir(admin, app), TUF_PENDING_ROOT_FILE)


# --- the server's data dir (beside the mirror, never inside it) ----------------------------------
# ``--data-dir`` holds the public mirror repo and ``private/`` .
DEFAULT_DATA_DIR = "asfaload-data"
# Where clients look for the backend unless told otherwise (-u / ASFALOAD_BACKEND_URL).
DEFAULT_BACKEND_URL = "http://127.0.0.1:3000"
MIRROR_REPO_DIR = "mirror.git"
PRIVATE_DIR = "private"
NONCE_DB_FILE = "nonces.sqlite3"
PENDING_INDEX_FILE = "pending-index.json"


# --- project ids ------------------------------------------------------------------------------------
_HOST_RE = re.compile(r"^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$|^[0-9a-f:.]+$")


def _clean_segment(seg: str, what: str) -> str:
    if "/" in seg:
        raise FormatError(f"Invalid {what}: {seg!r}")
    return _clean_segments(seg, what)


def _parse_url(url: str) -> SplitResult:
    if not isinstance(url, str) or any(c in url for c in "\x00\\ \t\r\n"):
        raise FormatError(f"Invalid URL: {url!r}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise FormatError(f"Invalid URL: {url!r}") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise FormatError(f"Unsupported URL scheme (http or https only): {url!r}")
    if parts.username is not None or parts.password is not None:
        raise FormatError(f"URL must not carry credentials: {url!r}")
    host = parts.hostname or ""
    if not host or not _HOST_RE.match(host):
        raise FormatError(f"Invalid host in URL: {url!r}")
    if port is not None and not 0 < port < 65536:
        raise FormatError(f"Invalid port in URL: {url!r}")
    return parts


def _path_segments(parts: SplitResult) -> list[str]:
    """Percent-decoded path segments; a trailing '/' is tolerated, inner empties are not."""
    raw = parts.path
    if raw.startswith("/"):
        raw = raw[1:]
    if raw.endswith("/"):
        raw = raw[:-1]
    if not raw:
        return []
    segs = []
    for seg in raw.split("/"):
        decoded = unquote(seg, errors="strict") if "%" in seg else seg
        if decoded != HIDDEN_SIGNERS_DIR:  # skipped by the file-server rule, refused elsewhere
            _clean_segment(decoded, "URL path segment")
        segs.append(decoded)
    return segs


def url_prefix(url: str) -> str:
    """``<scheme>/<host>/<port>``: the explicit port or the scheme default."""
    parts = _parse_url(url)
    port = parts.port if parts.port is not None else DEFAULT_PORTS[parts.scheme]
    return f"{parts.scheme}/{parts.hostname}/{port}"


def detect_forge(host: str, gitlab_hosts: Collection[str] = ()) -> str:
    """Forge by exact host (never a suffix match: ``evilgithub.com`` is no GitHub)."""
    host = host.lower()
    if host in GITHUB_HOSTS:
        return "github"
    if host in GITLAB_HOSTS or host in {h.lower() for h in gitlab_hosts}:
        return "gitlab"
    return "fileserver"


def _check_forge(forge: str) -> None:
    if forge not in FORGES:
        raise FormatError(f"Unknown forge type {forge!r} (expected one of {', '.join(FORGES)})")


def project_id(url: str, forge: str | None = None, *, gitlab_hosts: Collection[str] = ()) -> str:
    """Project id of a forge URL (signers file, release page or asset URL).

    - GitHub: ``https/github.com/443/<owner>/<repo>``, owner and repo case-folded (GitHub is
      case-insensitive, so ``Acme/Tool`` must not become a second project). A
      ``raw.githubusercontent.com`` URL names the same project as ``github.com``.
    - GitLab: ``<prefix>/<namespace...>/<project>``: everything before the first ``-`` segment.
    - File server: ``<prefix>`` + the parent directory of the file, skipping a parent named
      ``asfaload.signers`` or ``.asfaload.signers``.
    ``forge`` overrides detection by host (``github``, ``gitlab``, ``fileserver``).
    """
    parts = _parse_url(url)
    host = parts.hostname or ""
    kind = forge or detect_forge(host, gitlab_hosts)
    _check_forge(kind)
    segs = _path_segments(parts)
    prefix = url_prefix(url)
    if kind == "github":
        if len(segs) < 2:
            raise FormatError(f"GitHub URL needs an owner and a repository: {url!r}")
        if host == "raw.githubusercontent.com":
            # Same project as on github.com; an explicit port is kept (a different origin is
            # not silently folded into the real one).
            prefix = f"{parts.scheme}/github.com/{prefix.rsplit('/', 1)[1]}"
        owner, repo = segs[0].lower(), segs[1].lower()
        return check_project_id(join(prefix, owner, repo))
    if kind == "gitlab":
        if "-" not in segs:
            raise FormatError(f"GitLab URL needs a '/-/' part: {url!r}")
        dash = segs.index("-")
        if dash < 2:
            raise FormatError(f"GitLab URL needs a namespace and a project: {url!r}")
        return check_project_id(join(prefix, *segs[:dash]))
    if not segs:
        raise FormatError(f"File server URL needs a file path: {url!r}")
    dirs = segs[:-1]
    if dirs and dirs[-1] in (SIGNERS_DIR, HIDDEN_SIGNERS_DIR):
        dirs = dirs[:-1]
    return check_project_id(join(prefix, *dirs))


def check_project_id(pid: str) -> str:
    """Return ``pid`` if it has the ``<scheme>/<host>/<port>[/...]`` shape, else FormatError."""
    check_path(pid)
    segs = pid.split("/")
    if len(segs) < 3 or segs[0] not in DEFAULT_PORTS:
        raise FormatError(f"Invalid project id: {pid!r}")
    if not _HOST_RE.match(segs[1]) or not segs[2].isdigit() or not 0 < int(segs[2]) < 65536:
        raise FormatError(f"Invalid project id: {pid!r}")
    if segs[2] != str(int(segs[2])):
        raise FormatError(f"Invalid project id: {pid!r}")
    if in_signers_dir(pid) or basename(pid) == HISTORY_FILE:
        raise FormatError(f"Invalid project id: {pid!r}")
    return pid
