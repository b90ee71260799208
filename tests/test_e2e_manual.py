"""The manual's how-to guides, in order, against a real server process and the forge emulator.

Every step runs the real ``asfaload`` console script as a subprocess and checks the manual's
output lines (human and ``--json``) and exit codes — once with minisign keys, once with ed25519.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from asfaload.crypto import PublicKey
from asfaload.devtools.harness import (
    Signer,
    World,
    pending_signers_path,
    register_and_activate,
    register_release,
)

GH_DL = "https://github.com/acme/tool/releases/download"
PROJECT = "https/github.com/443/acme/tool"
INDEX_V1 = f"{PROJECT}/releases/tag/v1.0/asfaload.index.json"
INDEX_V2 = f"{PROJECT}/releases/tag/v2.0/asfaload.index.json"
ASSET = b"tool binary v1\n" * 5000


@pytest.fixture(scope="module", params=["minisign", "ed25519"])
def e2e_env(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    with World(tmp_path_factory.mktemp(f"e2e-{request.param}"), algorithm=request.param) as w:
        yield w


def download_lines(url: str, name: str, valid: int, size: int, extra: list[str] = ()) -> list[str]:  # type: ignore[assignment]
    mb = f"{size / 1048576:.2f} MB"
    return [
        f"Starting download: {url}",
        "✓ Downloaded signers file (N bytes)",
        "✓ Downloaded index file (N bytes)",
        "✓ Downloaded signatures file (N bytes)",
        f"✓ Signatures verified successfully ({valid} valid)",
        *extra,
        f"Downloading {name}",
        f"  Size: {mb}",
        f"Progress: 100.0% ({mb} / {mb})",
        f"✓ Download complete ({mb})",
        "✓ File hash verified (SHA-256)",
    ]


def normalise(lines: list[str]) -> list[str]:
    return [re.sub(r"\((\d+) bytes\)", "(N bytes)", line) for line in lines]


def test_manual_guides_github(e2e_env: World, tmp_path: Path) -> None:
    w = e2e_env
    # --- Generate a key pair (three artifact signers, two revocation keys) ---
    alice, bob, carol = (w.new_keys(n) for n in ("alice", "bob", "carol"))
    rev1, rev2 = w.new_keys("revoke1"), w.new_keys("revoke2")
    for s in (alice, bob, carol, rev1, rev2):
        assert s.secret_key.is_file() and s.public_key_file.is_file()

    # --- Create a signers file, commit and push it ---
    v1 = w.new_signers_file(
        "signers.json", [alice, bob, carol], 2, revocation=[rev1, rev2], revocation_threshold=2
    )
    url = w.forge.put_github_file("acme", "tool", "main", "asfaload.signers/index.json", v1)

    # --- Register a repository ---
    reg = w.as_signer(alice, "register-repo", url)
    required = sorted(s.public_key for s in (alice, bob, carol, rev1, rev2))
    assert reg.lines[0] == "Repository registered successfully!"
    assert reg.lines[1] == f"Project ID: {PROJECT}"
    assert reg.lines[2].startswith("Required signers (")
    assert sorted(reg.lines[2].split(": ", 1)[1].split(", ")) == sorted(
        k for k in required if k in reg.lines[2]
    )
    assert reg.lines[3] == "Next step: signers must submit signatures to activate the project."
    again = w.as_signer(alice, "register-repo", url, "--json", ok=False)
    assert again.returncode != 0
    assert "already registered" in json.loads(again.stderr)["error"]

    # --- Activate a signers file: every signer, in any order ---
    pending = pending_signers_path(PROJECT)
    order: list[Signer] = [carol, rev2, alice, rev1, bob]
    for i, s in enumerate(order):
        listed = w.as_signer(s, "list-pending")
        assert listed.lines == ["Files requiring your signature:", f"  - {pending} (pending)"]
        signed = w.as_signer(s, "sign-pending", pending)
        last = i == len(order) - 1
        assert signed.lines == ["Success! Signature submitted" + (" (complete)" if last else "")]
    assert w.as_signer(alice, "list-pending").lines == ["No pending signatures found."]
    assert json.loads(w.as_signer(alice, "list-pending", "--json").stdout) == {
        "file_paths": [],
        "files": [],
    }

    # --- Register a release ---
    rel = w.forge.add_github_release("acme", "tool", "v1.0", {"tool-linux-amd64.tar.gz": ASSET})
    out = w.as_signer(bob, "register-assets", "--github-release-url", rel)
    assert out.lines == [
        "Assets registered successfully! Remember you still need to sign it yourself!",
        f"Index file path: {INDEX_V1}",
    ]
    dup = w.as_signer(bob, "register-assets", "--github-release-url", rel, ok=False)
    assert dup.returncode != 0 and dup.stderr.startswith("Error: ")
    both = w.as_signer(
        bob, "register-assets", "--github-release-url", rel, "--csum-file", rel, ok=False
    )
    assert both.returncode != 0 and "mutually exclusive" in both.stderr

    # --- Sign a release: two of three ---
    pending_status = w.as_signer(carol, "signature-status", INDEX_V1).lines
    assert pending_status[:3] == [
        f"{INDEX_V1}: pending",
        "Kind: artifact (complete when every artifact signers group reaches its threshold)",
        "Group artifact: 0 of 3 signed, threshold 2, 2 more needed",
    ]
    assert sorted(pending_status[3:]) == sorted(
        f"  missing: {PublicKey.parse(s.public_key).key_id} {s.public_key}"
        for s in (alice, bob, carol)
    )
    listed = w.as_signer(carol, "list-pending", "--json")
    assert json.loads(listed.stdout) == {
        "file_paths": [INDEX_V1],
        "files": [{"file_path": INDEX_V1, "status": "pending"}],
    }
    first = w.as_signer(carol, "sign-pending", INDEX_V1, "--json")
    assert json.loads(first.stdout) == {"is_complete": False}
    second = w.as_signer(alice, "sign-pending", INDEX_V1)
    assert second.lines == ["Success! Signature submitted (complete)"]
    status = json.loads(w.as_signer(bob, "signature-status", INDEX_V1, "--json").stdout)
    assert (status["file_path"], status["is_complete"], status["status"]) == (
        INDEX_V1,
        True,
        "complete",
    )
    assert {k["public_key"] for k in status["signed"]} == {s.public_key for s in (alice, carol)}
    # The state is public: no -K needed, the same answer.
    anonymous = w.run("signature-status", INDEX_V1, "--json")
    assert json.loads(anonymous.stdout) == status
    assert w.run("signature-status", INDEX_V1).lines[0] == f"{INDEX_V1}: complete"
    late = w.as_signer(bob, "sign-pending", INDEX_V1, ok=False)
    assert late.returncode != 0

    # --- Download a file with signature verification ---
    dl_url = f"{GH_DL}/v1.0/tool-linux-amd64.tar.gz"
    got = w.download(dl_url, cwd=tmp_path)
    assert normalise(got.lines) == download_lines(
        dl_url, "tool-linux-amd64.tar.gz", 2, len(ASSET)
    ) + [
        "✓ File saved to: ./tool-linux-amd64.tar.gz",
        "✓ All done! Verified 2 signature(s)",
    ]
    assert (tmp_path / "tool-linux-amd64.tar.gz").read_bytes() == ASSET
    chosen = tmp_path / "sub" / "tool.tar.gz"
    got = w.download(dl_url, "-o", str(chosen), "--full-check")
    assert "✓ Signers chain history verified (1 entries)" in got.lines
    assert got.lines[-2] == f"✓ File saved to: {chosen}"
    assert chosen.read_bytes() == ASSET
    # An existing output file is replaced only with --force.
    kept = w.download(dl_url, "-o", str(chosen), "--json", ok=False)
    assert kept.returncode == 1 and kept.stdout == ""
    assert json.loads(kept.stderr) == {
        "error": f"Refusing to overwrite existing file {chosen} (give --force to replace it)"
    }
    assert chosen.read_bytes() == ASSET
    as_json = json.loads(w.download(dl_url, "-o", str(chosen), "--force", "--json").stdout)
    assert as_json["valid_signatures"] == 2 and as_json["index_file_path"] == INDEX_V1

    # --- Update a signers file: add dave, threshold 3 ---
    dave = w.new_keys("dave")
    v2 = w.new_signers_file(
        "signers_v2.json",
        [alice, bob, carol, dave],
        3,
        revocation=[rev1, rev2],
        revocation_threshold=2,
    )
    url2 = w.forge.put_github_file("acme", "tool", "main", "asfaload.signers/v2.json", v2)
    upd = w.as_signer(alice, "update-signers", url2, "--json")
    doc = json.loads(upd.stdout)
    assert doc["success"] is True and doc["project_id"] == PROJECT
    assert dave.public_key in doc["required_signers"]
    # Old admins (artifact signers by default) + the new key; any order.
    for s in (dave, bob, carol, alice):
        if pending in w.as_signer(s, "list-pending").stdout:
            w.as_signer(s, "sign-pending", pending)
    assert w.as_signer(dave, "list-pending").lines == ["No pending signatures found."]

    # Releases signed under the previous signers file remain valid, with the full chain too.
    got = w.download(dl_url, "-o", str(chosen), "--full-check", "--force")
    assert "✓ Signers chain history verified (1 entries)" in got.lines

    # A new release under v2 needs three signatures; its chain has two entries.
    rel2 = w.forge.add_github_release("acme", "tool", "v2.0", {"tool.tar.gz": b"v2" * 1000})
    assert register_release(w, dave, "--github-release-url", rel2) == INDEX_V2
    for s in (dave, carol):
        assert w.as_signer(s, "sign-pending", INDEX_V2).lines == ["Success! Signature submitted"]
    assert w.as_signer(bob, "sign-pending", INDEX_V2).lines[0].endswith("(complete)")
    got = w.download(f"{GH_DL}/v2.0/tool.tar.gz", "-o", str(tmp_path / "v2.tgz"), "--full-check")
    assert "✓ Signers chain history verified (2 entries)" in got.lines
    assert got.lines[-1] == "✓ All done! Verified 3 signature(s)"

    # --- Revoke a signed release (revocation threshold 2) ---
    refused = w.as_signer(alice, "revoke", INDEX_V1, ok=False)
    assert refused.returncode != 0  # artifact signers cannot revoke
    rv = w.as_signer(rev1, "revoke", INDEX_V1)
    assert rv.lines == [f"Success! File revoked: {INDEX_V1}"]  # the manual's line, as it is
    rp = f"{INDEX_V1}.revocation.json.pending"
    assert f"the revocation is pending: it takes effect once the other revokers sign {rp}" in (
        rv.stderr
    )
    assert w.as_signer(rev2, "list-pending").lines == [
        "Files requiring your signature:",
        f"  - {rp} (pending)",
    ]
    # Still downloadable while the revocation is pending.
    w.download(dl_url, "-o", str(tmp_path / "still.tgz"))
    assert w.as_signer(rev2, "sign-pending", rp).lines == [
        "Success! Signature submitted (complete)"
    ]
    revoked = w.run("signature-status", INDEX_V1).lines
    assert revoked[0] == f"{INDEX_V1}: revoked"
    when = next(line for line in revoked if line.startswith("Revoked: "))
    assert re.fullmatch(
        r"Revoked: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ by [0-9A-F]{16} " + re.escape(rev1.public_key),
        when,
    ), when
    target = tmp_path / "revoked.tgz"
    bad = w.download(dl_url, "-o", str(target), ok=False)
    assert bad.returncode == 1
    err = bad.stderr.splitlines()
    assert err[0] == "This file has been revoked."
    assert re.fullmatch(r"  Revoked at: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", err[1])
    assert err[2] == f"  Revoked by: {rev1.public_key}"
    assert err[3].startswith("Error: File has been revoked at ")
    assert not target.exists()
    # Other releases are unaffected.
    w.download(f"{GH_DL}/v2.0/tool.tar.gz", "-o", str(tmp_path / "v2b.tgz"))
    again = w.as_signer(rev1, "revoke", INDEX_V1, "--json", ok=False)
    assert again.returncode != 0 and "error" in json.loads(again.stderr)


def test_gitlab_release(e2e_env: World, tmp_path: Path) -> None:
    w = e2e_env
    a, b = w.new_keys("gl-a"), w.new_keys("gl-b")
    raw = w.new_signers_file("gl.json", [a, b], 2)
    url = w.forge.put_gitlab_file("acme/group/tool", "main", "asfaload.signers/index.json", raw)
    project = register_and_activate(w, a, url, [b, a])
    assert project == "https/gitlab.com/443/acme/group/tool"
    rel = w.forge.add_gitlab_release("acme/group/tool", "v3.1", {"tool.zip": b"zip" * 999})
    index = register_release(w, b, "--gitlab-release-url", rel)
    assert index == f"{project}/-/releases/v3.1/asfaload.index.json"
    w.sign_all_pending([a, b], index)
    dl = "https://gitlab.com/acme/group/tool/-/releases/v3.1/downloads/tool.zip"
    got = w.download(dl, "-o", str(tmp_path / "tool.zip"), "--full-check")
    assert got.lines[-1] == "✓ All done! Verified 2 signature(s)"
    assert (tmp_path / "tool.zip").read_bytes() == b"zip" * 999
    # --type override on the same URL.
    w.download(dl, "--type", "gitlab", "-o", str(tmp_path / "t2.zip"))


def test_file_server_project_with_checksum_files(e2e_env: World, tmp_path: Path) -> None:
    import hashlib

    w = e2e_env
    a, b, c = w.new_keys("fs-a"), w.new_keys("fs-b"), w.new_keys("fs-c")
    raw = w.new_signers_file("fs.json", [a, b, c], 1)
    url = w.forge.put_fileserver_file("acme/tool/asfaload.signers/signers.json", raw)
    project = register_and_activate(w, c, url, [a, b, c])
    assert project == "https/files.example.com/443/acme/tool"
    one, two = b"first file\n" * 100, b"second file\n" * 100
    w.forge.put_fileserver_file("acme/tool/v1.0/one.bin", one)
    w.forge.put_fileserver_file("acme/tool/v1.0/two.bin", two)
    sha256 = f"{hashlib.sha256(one).hexdigest()}  one.bin\n"
    sha512 = f"{hashlib.sha512(two).hexdigest()}  two.bin\n"
    s256 = w.forge.put_fileserver_file("acme/tool/v1.0/SHA256SUMS", sha256.encode())
    s512 = w.forge.put_fileserver_file("acme/tool/v1.0/SHA512SUMS", sha512.encode())
    out = w.as_signer(a, "register-assets", "--csum-file", s256, "--csum-file", s512, "--json")
    index = json.loads(out.stdout)["index_file_path"]
    assert index == f"{project}/v1.0/asfaload.index.json"
    assert w.as_signer(b, "sign-pending", index).lines == [
        "Success! Signature submitted (complete)"
    ]
    base = "https://files.example.com/acme/tool/v1.0"
    got = w.download(f"{base}/one.bin", "-o", str(tmp_path / "one.bin"))
    assert "✓ File hash verified (SHA-256)" in got.lines
    got = w.download(f"{base}/two.bin", "--type", "fileserver", "-o", str(tmp_path / "two.bin"))
    assert "✓ File hash verified (SHA-512)" in got.lines
    assert (tmp_path / "two.bin").read_bytes() == two
    missing = w.download(f"{base}/three.bin", "-o", str(tmp_path / "three.bin"), ok=False)
    assert missing.returncode == 1 and "not found in index" in missing.stderr
    assert not (tmp_path / "three.bin").exists()
