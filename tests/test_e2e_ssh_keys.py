"""OpenSSH keys and the newer helpers through the whole flow, against a real server on loopback.

A project whose signers file lists two ``ssh-keygen`` keys (one by its ``.pub`` file, one as the
line GitHub publishes at ``https://github.com/<user>.keys``) beside an asfaload ed25519 key:
registered and activated with ``-K ~/.ssh/id_ed25519``-style keys, a release registered, signed
with them (the passphrase through ``--password-command``, the fingerprint shown before signing)
and downloaded with verification; ``check-index`` follows the release from unregistered through
pending and complete to revoked; ``ping`` answers. Every step is the real console script.
"""

from __future__ import annotations

import base64
import json
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

from asfaload.crypto import PublicKey, sha512
from asfaload.crypto.randomart import randomart
from asfaload.devtools.harness import (
    PASSWORD,
    Signer,
    World,
    pending_signers_path,
    register_release,
)
from asfaload.devtools.server import free_port
from tests.support.ssh import ssh_keygen

PROJECT = "https/github.com/443/acme/sshtool"
INDEX = f"{PROJECT}/releases/tag/v1.0/asfaload.index.json"
ASSET_URL = "https://github.com/acme/sshtool/releases/download/v1.0/sshtool.tar.gz"
ASSET = b"sshtool release bytes\n" * 3000


@pytest.fixture(scope="module")
def e2e_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with World(tmp_path_factory.mktemp("e2e-ssh"), algorithm="ed25519") as w:
        yield w


def ssh_signer(w: World, name: str, passphrase: str = "") -> Signer:
    d = w.workdir / "ssh" / name
    d.mkdir(parents=True)
    sk = ssh_keygen(d, "id_ed25519", "-t", "ed25519", passphrase=passphrase)
    return Signer(name, sk, sk.with_name("id_ed25519.pub"))


def ed25519_string_of(pub_line: str) -> str:
    """The key string an ssh-ed25519 line stands for, read with the cryptography library."""
    key = load_ssh_public_key(pub_line.encode())
    assert isinstance(key, Ed25519PublicKey)
    return "ed25519:" + base64.b64encode(key.public_bytes_raw()).decode()


def one_error(run_stderr: str) -> str:
    lines = run_stderr.splitlines()
    assert len(lines) == 1, run_stderr
    return lines[0]


def test_ssh_keys_sign_a_release_end_to_end(e2e_env: World, tmp_path: Path) -> None:
    w = e2e_env
    alice = ssh_signer(w, "alice")  # unencrypted ~/.ssh/id_ed25519
    bob = ssh_signer(w, "bob", passphrase=PASSWORD)  # passphrase-protected
    carol = w.new_keys("carol")  # an asfaload ed25519 key beside them
    bob_github_line = " ".join(bob.public_key_file.read_text().split()[:2])  # no comment

    # --- the signers file names the ssh keys by their ed25519 key strings ---
    out = w.workdir / "signers" / "ssh.json"
    w.run(
        "new-signers-file", "--artifact-signer-file", str(alice.public_key_file),
        "--artifact-signer", bob_github_line, "--artifact-signer-file",
        str(carol.public_key_file), "-A", "2", "-o", str(out),
    )  # fmt: skip
    doc = json.loads(out.read_text())
    listed = {s["data"]["pubkey"] for s in doc["artifact_signers"][0]["signers"]}
    alice_key = ed25519_string_of(alice.public_key_file.read_text())
    bob_key = ed25519_string_of(bob_github_line)
    assert listed == {alice_key, bob_key, carol.public_key}
    url = w.forge.put_github_file(
        "acme", "sshtool", "main", "asfaload.signers/index.json", out.read_bytes()
    )

    # --- register with the unencrypted ssh key (no password asked, no terminal) ---
    reg = w.run("register-repo", "-K", str(alice.secret_key), url)
    assert reg.lines[1] == f"Project ID: {PROJECT}"
    pending = pending_signers_path(PROJECT)
    pw_file = tmp_path / "bob-passphrase"
    pw_file.write_text(PASSWORD + "\n")
    assert w.run("sign-pending", "-K", str(alice.secret_key), pending).lines == [
        "Success! Signature submitted"
    ]
    assert w.run("sign-pending", "-K", str(bob.secret_key), "-P", str(pw_file), pending).lines == [
        "Success! Signature submitted"
    ]
    assert w.as_signer(carol, "sign-pending", pending).lines == [
        "Success! Signature submitted (complete)"
    ]

    # --- a release: check-index follows it from unregistered to complete ---
    rel = w.forge.add_github_release("acme", "sshtool", "v1.0", {"sshtool.tar.gz": ASSET})
    missing = w.run("check-index", rel, ok=False)
    assert missing.returncode == 1 and missing.stdout == ""
    assert one_error(missing.stderr) == (
        f"Error: Not registered: the backend has no release index {INDEX}"
    )
    assert register_release(w, carol, "--github-release-url", rel) == INDEX
    for target in (rel, ASSET_URL):
        pend = w.run("check-index", target, ok=False)
        assert pend.returncode == 1 and pend.stdout == ""
        assert one_error(pend.stderr) == (
            f"Error: {INDEX}: pending (registered, not yet signed by enough signers)"
        )
    pend_json = w.run("check-index", ASSET_URL, "--json", ok=False)
    assert pend_json.returncode == 1 and pend_json.stdout == ""
    assert json.loads(pend_json.stderr) == {
        "error": f"{INDEX}: pending (registered, not yet signed by enough signers)"
    }

    # --- bob signs: passphrase from a password manager command, fingerprint before signing ---
    served = requests.get(f"{w.backend_url}/v1/files/{INDEX}", timeout=30).content
    digest = sha512(served)
    cmd = f"printf '%s\\n' {shlex.quote(PASSWORD)}"
    signed = w.run(
        "sign-pending", "-K", str(bob.secret_key), "--password-command", cmd,
        "--show-fingerprint", INDEX,
    )  # fmt: skip
    assert signed.lines == ["Success! Signature submitted"]
    art = randomart(digest, "asfaload")
    assert signed.stderr == f"{INDEX}\nsha512:{digest.hex()}\n{art}\n"
    assert PASSWORD not in signed.stdout + signed.stderr
    # The same picture for a copy of the index the signer holds, from get-digest.
    local = tmp_path / "asfaload.index.json"
    local.write_bytes(served)
    got = w.run("get-digest", str(local), "--show-fingerprint")
    assert got.lines == [f"sha512:{digest.hex()}"]
    assert got.stderr.splitlines()[1:] == signed.stderr.splitlines()[1:]
    # Not on a terminal and not asked for: no picture (stderr stays clean for scripts).
    assert w.run("get-digest", str(local)).stderr == ""

    # --- alice signs with the unencrypted ssh key: complete ---
    done = w.run("sign-pending", "-K", str(alice.secret_key), INDEX, "--json")
    assert json.loads(done.stdout) == {"is_complete": True}
    assert done.stderr == ""
    status = json.loads(w.run("signature-status", INDEX, "--json").stdout)
    assert status["status"] == "complete"
    assert {k["public_key"] for k in status["signed"]} == {alice_key, bob_key}
    assert PublicKey.parse(alice_key) == PublicKey.from_file(alice.public_key_file)

    ok = w.run("check-index", ASSET_URL)
    assert ok.lines == [f"{INDEX}: complete"]
    assert json.loads(w.run("check-index", rel, "--json").stdout) == {
        "url": rel,
        "index_file_path": INDEX,
        "registered": True,
        "status": "complete",
    }

    # --- a verified download of the asset the ssh keys signed ---
    target = tmp_path / "sshtool.tar.gz"
    dl = w.download(ASSET_URL, "-o", str(target), "--full-check")
    assert dl.lines[-1] == "✓ All done! Verified 2 signature(s)"
    assert target.read_bytes() == ASSET

    # --- revoked (revocation falls back to the artifact signers, threshold 2) ---
    w.run("revoke", "-K", str(alice.secret_key), INDEX)
    rp = f"{INDEX}.revocation.json.pending"
    w.run("sign-pending", "-K", str(bob.secret_key), "-P", str(pw_file), rp)
    revoked = w.run("check-index", ASSET_URL, ok=False)
    assert revoked.returncode == 1 and one_error(revoked.stderr) == f"Error: {INDEX}: revoked"


def test_check_index_refuses_urls_that_name_no_release(e2e_env: World) -> None:
    bad = e2e_env.run("check-index", "https://github.com/acme/sshtool", ok=False)
    assert bad.returncode == 1
    assert one_error(bad.stderr).startswith("Error: Not a GitHub release URL")
    js = e2e_env.run("check-index", "ftp://example.com/x", "--json", ok=False)
    assert js.returncode == 1 and js.stdout == "" and "error" in json.loads(js.stderr)


def test_ping(e2e_env: World) -> None:
    w = e2e_env
    assert w.run("ping").lines == [f"Backend {w.backend_url} is up (status: ok)"]
    assert json.loads(w.run("ping", "--json").stdout) == {
        "backend_url": w.backend_url,
        "status": "ok",
    }
    nobody = f"http://127.0.0.1:{free_port()}"
    down = w.run("ping", "-u", nobody, ok=False)
    assert down.returncode == 1 and down.stdout == ""
    assert one_error(down.stderr).startswith(f"Error: Cannot reach the backend at {nobody}")
    down_json = w.run("ping", "-u", nobody, "--json", ok=False)
    assert json.loads(down_json.stderr)["error"].startswith("Cannot reach the backend")
