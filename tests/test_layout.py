"""Mirror path names and project ids (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asfaload import layout as L
from asfaload.errors import FormatError

P = "https/github.com/443/acme/tool"


@pytest.mark.parametrize(
    ("url", "forge", "expected"),
    [
        ("https://github.com/acme/tool/blob/main/asfaload.signers.json", None, P),
        # GitHub is case-insensitive: one project, not two.
        ("https://github.com/Acme/TOOL/blob/main/asfaload.signers.json", None, P),
        ("https://raw.githubusercontent.com/Acme/tool/main/asfaload.signers.json", None, P),
        (
            "https://raw.githubusercontent.com:8443/Acme/tool/main/asfaload.signers.json",
            None,
            "https/github.com/8443/acme/tool",
        ),
        ("https://github.com/acme/tool/releases/tag/v1.0", None, P),
        ("https://github.com/acme/tool", None, P),
        ("http://127.0.0.1:8001/gh/acme/tool", "github", "http/127.0.0.1/8001/gh/acme"),
        (
            "https://gitlab.com/group/sub/proj/-/blob/main/s.json",
            None,
            "https/gitlab.com/443/group/sub/proj",
        ),
        (
            "https://gitlab.com/Group/Proj/-/raw/main/s.json",
            None,
            "https/gitlab.com/443/Group/Proj",
        ),
        (
            "https://git.example.org:8443/ns/p/-/raw/main/s.json",
            "gitlab",
            "https/git.example.org/8443/ns/p",
        ),
        ("http://localhost:8080/myproject/signers.json", None, "http/localhost/8080/myproject"),
        (
            "http://localhost:8080/myproject/.asfaload.signers/signers1.json",
            None,
            "http/localhost/8080/myproject",
        ),
        (
            "http://localhost:8080/myproject/asfaload.signers/s.json",
            None,
            "http/localhost/8080/myproject",
        ),
        ("http://localhost:8080/signers.json", None, "http/localhost/8080"),
        ("http://localhost:9090/a/b/c.json", "fileserver", "http/localhost/9090/a/b"),
        ("https://example.com/a/s.json", None, "https/example.com/443/a"),
        ("http://example.com:80/a/s.json", None, "http/example.com/80/a"),
        (
            "https://github.com/acme/tool/blob/main/s.json",
            "fileserver",
            "https/github.com/443/acme/tool/blob/main",
        ),
    ],
)
def test_project_id(url: str, forge: str | None, expected: str) -> None:
    assert L.project_id(url, forge) == expected
    assert L.check_project_id(expected) == expected


def test_project_id_configured_gitlab_host() -> None:
    url = "https://git.corp.test/ns/p/-/raw/main/s.json"
    assert L.project_id(url, gitlab_hosts=["git.corp.test"]) == "https/git.corp.test/443/ns/p"
    assert L.project_id(url) == "https/git.corp.test/443/ns/p/-/raw/main"


@pytest.mark.parametrize(
    ("url", "forge"),
    [
        ("ftp://github.com/acme/tool", None),
        ("https://github.com/acme", None),
        ("https://github.com/", None),
        ("https://gitlab.com/proj/-/raw/main/s.json", None),
        ("https://gitlab.com/ns/proj/raw/main/s.json", None),
        ("http://localhost:8080/", None),
        ("http://localhost:8080", None),
        ("http://localhost:8080/a/../b/s.json", None),
        ("http://localhost:8080/a/./s.json", None),
        ("http://localhost:8080/a//s.json", None),
        ("http://localhost:8080/a/%2e%2e/s.json", None),
        ("http://localhost:8080/a%2Fb/s.json", None),
        ("http://localhost:8080/.git/s.json", None),
        ("https://user:pw@github.com/acme/tool", None),
        ("https://github.com:99999/acme/tool", None),
        ("https:///acme/tool", None),
        ("https://github.com/acme/tool", "bitbucket"),
        ("https://evil-github.com.attacker.net/acme/tool/x.json", "nope"),
    ],
)
def test_project_id_rejects(url: str, forge: str | None) -> None:
    with pytest.raises(FormatError):
        L.project_id(url, forge)


def test_lookalike_github_host_is_a_file_server() -> None:
    # Exact host match only: a host merely containing github.com is not GitHub.
    assert L.detect_forge("evilgithub.com") == "fileserver"
    assert L.detect_forge("github.com.attacker.net") == "fileserver"
    assert L.detect_forge("GitHub.com") == "github"


def test_signers_names() -> None:
    assert L.signers_file_path(P) == P + "/asfaload.signers/asfaload.signers.json"
    assert (
        L.signers_file_path(P, pending=True)
        == P + "/asfaload.signers.pending/asfaload.signers.json"
    )
    assert L.metadata_path(P) == P + "/asfaload.signers/asfaload.signers.json.metadata.json"
    assert L.metadata_path(P, pending=True).endswith(
        "asfaload.signers.pending/asfaload.signers.json.metadata.json"
    )
    assert L.history_path(P) == P + "/asfaload.signers.history.json"
    assert L.signers_project_of(L.signers_file_path(P, pending=True)) == (P, True)
    assert L.signers_project_of(L.metadata_path(P)) == (P, False)
    assert L.signers_project_of(P + "/releases/tag/v1/asfaload.index.json") is None


def test_subject_names() -> None:
    x = P + "/releases/tag/v1/asfaload.index.json"
    assert L.signatures_path(x) == x + ".signatures.json"
    assert L.pending_signatures_path(x) == x + ".signatures.json.pending"
    assert L.local_signers_path(x) == x + ".signers.json"
    assert L.revocation_path(x) == x + ".revocation.json"
    assert L.pending_revocation_path(x) == x + ".revocation.json.pending"
    assert L.revocation_signatures_path(x) == x + ".revocation.json.signatures.json"
    assert (
        L.pending_revocation_signatures_path(x)
        == x + ".revocation.json.pending.signatures.json.pending"
    )
    assert L.revocation_signers_path(x) == x + ".revocation.json.signers.json"
    assert L.revoked_signatures_path(x) == x + ".signatures.json.revoked"
    assert L.revoked_pending_signatures_path(x) == x + ".signatures.json.pending.revoked"
    assert L.subject_of_pending_revocation(L.pending_revocation_path(x)) == x
    assert L.is_pending_revocation(L.pending_revocation_path(x))
    assert not L.is_pending_revocation(x)
    assert L.subject_of_revocation(L.revocation_path(x)) == x
    assert L.is_revocation(L.revocation_path(x))
    assert not L.is_revocation(x)
    assert not L.is_revocation(L.pending_revocation_path(x))
    # A file named just the suffix names no subject.
    assert not L.is_revocation("a/revocation.json")
    with pytest.raises(FormatError):
        L.subject_of_revocation("a/revocation.json")


def test_subject_of_nested_pending_signatures_strips_one_suffix() -> None:
    # Upstream strips the suffix repeatedly and would answer "a/x".
    nested = "a/x.signatures.json.pending.signatures.json.pending"
    assert L.subject_of_pending_signatures(nested) == "a/x.signatures.json.pending"
    assert L.subject_of_signatures("a/x.signatures.json.signatures.json") == "a/x.signatures.json"


@pytest.mark.parametrize(
    "bad", ["a/signatures.json.pending", "a/x.json", "", "a/../x.signatures.json.pending"]
)
def test_subject_of_pending_signatures_rejects(bad: str) -> None:
    with pytest.raises(FormatError):
        L.subject_of_pending_signatures(bad)


def test_release_index_paths() -> None:
    gh = P + "/releases/tag/v1.0/asfaload.index.json"
    assert L.github_release_index_path(P, "v1.0") == gh
    assert L.release_index_path("https://github.com/Acme/Tool/releases/tag/v1.0") == gh
    assert L.release_index_path("https://github.com/acme/tool/releases/download/v1.0/t.tgz") == gh
    assert (
        L.github_release_index_path(P, "release/v2")
        == P + "/releases/tag/release/v2/asfaload.index.json"
    )
    gl = "https/gitlab.com/443/ns/p/-/releases/v1/asfaload.index.json"
    assert L.gitlab_release_index_path("https/gitlab.com/443/ns/p", "v1") == gl
    assert L.release_index_path("https://gitlab.com/ns/p/-/releases/v1") == gl
    assert L.release_index_path("https://gitlab.com/ns/p/-/releases/v1/downloads/bin/t") == gl
    assert (
        L.release_index_path("https://example.com/releases/v1.0/tool.tgz")
        == "https/example.com/443/releases/v1.0/asfaload.index.json"
    )
    for bad_tag in ("..", "", "a//b", ".hidden", "a/./b"):
        with pytest.raises(FormatError):
            L.github_release_index_path(P, bad_tag)
    with pytest.raises(FormatError):
        L.release_index_path("https://github.com/acme/tool/pulls/3")


def test_checksum_index_path() -> None:
    urls = [
        "https://example.com/releases/v1.0/SHA256SUMS",
        "https://example.com/releases/v1.0/SHA512SUMS",
    ]
    assert L.checksum_index_path(urls) == "https/example.com/443/releases/v1.0/asfaload.index.json"
    for bad in (
        [],
        [
            "https://example.com/releases/v1.0/SHA256SUMS",
            "https://example.com/releases/v2/SHA512SUMS",
        ],
        [
            "https://example.com/releases/v1.0/SHA256SUMS",
            "http://example.com/releases/v1.0/SHA512SUMS",
        ],
        ["https://example.com/"],
    ):
        with pytest.raises(FormatError):
            L.checksum_index_path(bad)


def test_tuf_paths() -> None:
    assert L.tuf_dir("alice", "app") == "tuf/alice/app"
    assert L.tuf_versioned_path("alice", "app", "root", 2) == "tuf/alice/app/2.root.json"
    assert L.tuf_versioned_path("alice", "app", "targets", 1) == "tuf/alice/app/1.targets.json"
    assert L.tuf_timestamp_path("alice", "app") == "tuf/alice/app/timestamp.json"
    assert L.tuf_pending_root_path("alice", "app") == "tuf/alice/app/root.json.pending"
    for admin, app in (("..", "a"), ("a/b", "c"), ("a", ".git"), ("", "x")):
        with pytest.raises(FormatError):
            L.tuf_dir(admin, app)
    with pytest.raises(FormatError):
        L.tuf_versioned_path("a", "b", "timestamp", 1)
    with pytest.raises(FormatError):
        L.tuf_versioned_path("a", "b", "root", 0)
    assert L.parse_tuf_versioned_name("2.root.json") == (2, "root")
    assert L.parse_tuf_versioned_name("10.snapshot.json") == (10, "snapshot")
    for name in ("0.root.json", "01.root.json", "1.timestamp.json", "root.json.pending", "x.json"):
        assert L.parse_tuf_versioned_name(name) is None


@given(st.sampled_from(L.TUF_VERSIONED_ROLES), st.integers(min_value=1, max_value=10**9))
def test_tuf_versioned_name_round_trip(role: str, version: int) -> None:
    name = L.basename(L.tuf_versioned_path("alice", "app", role, version))
    assert L.parse_tuf_versioned_name(name) == (version, role)


@pytest.mark.parametrize(
    "pid",
    [
        "github.com/acme/tool",
        "https/github.com/abc/acme",
        "ftp/github.com/21/x",
        "https/github.com/443/acme/asfaload.signers",
        "https/github.com/0443/x",
        "https/github.com/443/../x",
        "https/github.com",
    ],
)
def test_check_project_id_rejects(pid: str) -> None:
    with pytest.raises(FormatError):
        L.check_project_id(pid)


def test_ancestors_and_parent() -> None:
    assert L.ancestors("a/b/c") == ["a/b", "a", ""]
    assert L.parent("a") == ""
    assert L.basename("a/b") == "b"


# --- property tests -------------------------------------------------------------------------------
_seg = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=0, max_size=12
)
_url_path = st.lists(
    st.one_of(
        _seg, st.sampled_from(["..", ".", "", ".git", "%2e%2e", "%2F", "a%00b", "asfaload.signers"])
    ),
    min_size=0,
    max_size=6,
).map("/".join)
_host = st.sampled_from(
    [
        "github.com",
        "raw.githubusercontent.com",
        "gitlab.com",
        "example.com",
        "localhost",
        "127.0.0.1",
        "GitHub.com",
    ]
)


@given(
    scheme=st.sampled_from(["http", "https", "ftp", "HTTPS"]),
    host=_host,
    port=st.one_of(st.none(), st.integers(min_value=-5, max_value=70000)),
    path=_url_path,
    forge=st.sampled_from([None, "github", "gitlab", "fileserver"]),
)
def test_project_id_is_always_clean_or_rejected(
    scheme: str, host: str, port: int | None, path: str, forge: str | None
) -> None:
    url = f"{scheme}://{host}{'' if port is None else ':' + str(port)}/{path}"
    try:
        pid = L.project_id(url, forge)
    except FormatError:
        return
    # Whatever we accept is a clean relative path of the documented shape.
    assert L.check_project_id(pid) == pid
    assert ".." not in pid.split("/")
    scheme_out, _host_out, port_out = pid.split("/")[:3]
    assert scheme_out == scheme.lower()
    assert port_out == str(port if port is not None else {"http": 80, "https": 443}[scheme.lower()])
    # Deterministic and case-folded for GitHub.
    assert L.project_id(url, forge) == pid
    if (forge or L.detect_forge(host)) == "github":
        assert pid == pid.lower()


@given(st.text(max_size=60))
def test_check_path_never_accepts_traversal(path: str) -> None:
    try:
        L.check_path(path)
    except FormatError:
        return
    segs = path.split("/")
    assert all(s not in ("", ".", "..") and not s.startswith(".") for s in segs)
    assert "\x00" not in path and "\\" not in path and "\x1b" not in path


@given(st.lists(st.text(alphabet="abc.-_", min_size=1, max_size=6), min_size=1, max_size=4))
def test_pending_signatures_round_trip(segs: list[str]) -> None:
    path = "/".join(segs)
    try:
        L.check_path(path)
    except FormatError:
        return
    assert L.subject_of_pending_signatures(L.pending_signatures_path(path)) == path
    assert L.subject_of_signatures(L.signatures_path(path)) == path
    assert L.subject_of_pending_revocation(L.pending_revocation_path(path)) == path
    assert L.subject_of_revocation(L.revocation_path(path)) == path


def _clean_by_definition(path: str) -> bool:
    if not path or path.startswith("/") or path.endswith("/"):
        return False
    if "\\" in path or not path.isprintable():
        return False
    return not any(seg in ("", ".", "..") or seg.startswith(".") for seg in path.split("/"))


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["a", "é", ".", "/", "\\", "\x00", "b.", "\x1b", "\x9b", "\x7f", "\n", "\u200b", " "]
        ),
        max_size=10,
    ).map("".join)
)
def test_check_path_is_its_definition(path: str) -> None:
    """check_path accepts exactly the paths its docstring defines as clean."""
    try:
        L.check_path(path)
        clean = True
    except FormatError:
        clean = False
    assert clean == _clean_by_definition(path)


def test_one_line_keeps_a_hostile_text_off_the_terminal() -> None:
    """What a hostile mirror names (paths, commit messages) reaches users through one_line:
    control characters are shown, not sent, and a huge text is cut."""
    from asfaload.errors import ONE_LINE_LIMIT, one_line

    assert one_line("a\x1b]0;owned\x07b\n c\x9b2K") == "a\\x1b]0;owned\\x07b c\\x9b2K"
    long = one_line("x" * (ONE_LINE_LIMIT * 3))
    assert len(long) == ONE_LINE_LIMIT + 1 and long.endswith("…")
