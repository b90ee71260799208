"""Tampering and multi-signer workflows, end to end (real server, forge emulator, real CLI).

A tampering *mirror* is a second, plain HTTP server (``python -m http.server``) serving a copy of
the backend's public files under ``/v1/files/...`` with some of them altered; the client is
pointed at it with ``-u``. Every tampered download must fail with a clear message, exit non-zero
and leave no output file.
"""

from __future__ import annotations

import hashlib
import json
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from asfaload import layout
from asfaload.client.api import BackendClient
from asfaload.crypto import SecretKey, sha512
from asfaload.devtools.harness import (
    Signer,
    World,
    mirror_server,
    register_and_activate,
    register_release,
)
from asfaload.model import (
    CurrentSignersInfo,
    SignaturesFile,
    SignerGroup,
    SignersChain,
    SignersFile,
    SignersMetadata,
)

ASSET = b"genuine release bytes\n" * 4000
EVIL = b"malware\n" * 4000
DL = "https://github.com/acme/app/releases/download/v1.0/app.bin"


@dataclass
class Setup:
    world: World
    signers: list[Signer]
    index: str
    signers_url: str


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    with World(tmp_path_factory.mktemp("tamper")) as w:
        a, b, c = (w.new_keys(n) for n in ("alice", "bob", "carol"))
        raw = w.new_signers_file("signers.json", [a, b, c], 2)
        url = w.forge.put_github_file("acme", "app", "main", "asfaload.signers/index.json", raw)
        register_and_activate(w, a, url, [a, b, c])
        rel = w.forge.add_github_release("acme", "app", "v1.0", {"app.bin": ASSET})
        index = register_release(w, a, "--github-release-url", rel)
        w.sign_all_pending([b, c], index)
        yield Setup(w, [a, b, c], index, url)


@pytest.fixture
def mirror(setup: Setup, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A copy of the backend's files for the release, served by a plain HTTP server."""
    api = BackendClient(setup.world.backend_url)
    root = tmp_path / "mirror"
    idx = setup.index
    for path in (idx, layout.signatures_path(idx), layout.local_signers_path(idx)):
        dest = root / "v1" / "files" / path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes(api.get_file(path))
    chain = root / "v1" / "get_signers_chain" / idx
    chain.parent.mkdir(parents=True, exist_ok=True)
    chain.write_text(json.dumps(api.get_signers_chain(idx)))
    proc, url = mirror_server(root)
    try:
        yield root, url
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)


def files(root: Path, path: str) -> Path:
    return root / "v1" / "files" / path


def refused(w: World, out: Path, *args: str) -> str:
    res = w.download(DL, "-o", str(out), *args, ok=False)
    assert res.returncode == 1, str(res)
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []  # no temp file
    assert res.stderr.startswith("Error: ")
    return res.stderr


def test_untampered_mirror_is_accepted(
    setup: Setup, mirror: tuple[Path, str], tmp_path: Path
) -> None:
    _, url = mirror
    out = tmp_path / "ok.bin"
    res = setup.world.download(DL, "-u", url, "-o", str(out), "--full-check")
    assert "✓ Signers chain history verified (1 entries)" in res.lines
    assert out.read_bytes() == ASSET


def test_asset_changed_on_forge_after_signing(setup: Setup, tmp_path: Path) -> None:
    w = setup.world
    public = "gh/acme/app/releases/download/v1.0/app.bin"
    w.forge.put_file(public, EVIL)
    try:
        err = refused(w, tmp_path / "app.bin")
        assert "Hash mismatch" in err
    finally:
        w.forge.put_file(public, ASSET)


def test_index_altered_on_mirror(setup: Setup, mirror: tuple[Path, str], tmp_path: Path) -> None:
    root, url = mirror
    w = setup.world
    idx = files(root, setup.index)
    genuine = hashlib.sha256(ASSET).hexdigest()
    idx.write_bytes(
        idx.read_bytes().replace(genuine.encode(), hashlib.sha256(EVIL).hexdigest().encode())
    )
    err = refused(w, tmp_path / "x.bin", "-u", url)
    assert "Signature threshold not met: 0 valid signature(s)" in err


def test_signatures_file_altered_on_mirror(
    setup: Setup, mirror: tuple[Path, str], tmp_path: Path
) -> None:
    root, url = mirror
    sig_path = files(root, layout.signatures_path(setup.index))
    sigs = SignaturesFile.from_bytes(sig_path.read_bytes())
    # Keep one genuine signature; replace the other by a signature over other bytes.
    keep, drop = sorted(sigs.entries, key=str)[:2]
    forged = SignaturesFile.empty().with_entry(keep, sigs.entries[keep])
    other = next(s for s in setup.signers if s.public_key == str(drop))
    key = SecretKey.load(other.secret_key, "correct horse battery staple 42")
    forged = forged.with_entry(drop, key.sign(sha512(b"something else")))
    sig_path.write_bytes(forged.to_bytes())
    err = refused(setup.world, tmp_path / "x.bin", "-u", url)
    assert "Signature threshold not met: 1 valid signature(s)" in err
    assert "1 invalid signature(s) ignored" in err


def _attacker_release(root: Path, index_path: str) -> tuple[SecretKey, SignersFile, bytes]:
    """Rewrite the mirror's index, signers copy and signatures with the attacker's key."""
    attacker = SecretKey.generate("minisign")
    evil_signers = SignersFile.create([SignerGroup((attacker.public_key,), 1)])
    evil_signers = SignersFile.parse(evil_signers.to_bytes())
    idx = files(root, index_path)
    genuine = hashlib.sha256(ASSET).hexdigest().encode()
    new_index = idx.read_bytes().replace(genuine, hashlib.sha256(EVIL).hexdigest().encode())
    idx.write_bytes(new_index)
    files(root, layout.local_signers_path(index_path)).write_bytes(evil_signers.raw)
    sigs = SignaturesFile.empty().with_entry(attacker.public_key, attacker.sign(sha512(new_index)))
    files(root, layout.signatures_path(index_path)).write_bytes(sigs.to_bytes())
    return attacker, evil_signers, new_index


def test_swapped_signers_copy_caught_by_full_check(
    setup: Setup, mirror: tuple[Path, str], tmp_path: Path
) -> None:
    root, url = mirror
    w = setup.world
    _attacker_release(root, setup.index)
    w.forge.put_file("gh/acme/app/releases/download/v1.0/app.bin", EVIL)
    try:
        # Without --full-check the client trusts the signers copy the mirror serves: the
        # documented limit of the default mode.
        res = w.download(DL, "-u", url, "-o", str(tmp_path / "plain.bin"))
        assert res.returncode == 0
        # With --full-check the chain from the forge-published signers file exposes the swap.
        err = refused(w, tmp_path / "full.bin", "-u", url, "--full-check")
        assert "SignersChainCopyMismatch" in err
    finally:
        w.forge.put_file("gh/acme/app/releases/download/v1.0/app.bin", ASSET)


def test_forged_chain_caught_by_forge_trust_anchor(
    setup: Setup, mirror: tuple[Path, str], tmp_path: Path
) -> None:
    root, url = mirror
    attacker, evil_signers, _ = _attacker_release(root, setup.index)
    real = SignersChain.from_dict(
        json.loads((root / "v1" / "get_signers_chain" / setup.index).read_text())["chain"]
    )
    genuine_meta = real.current_signers_info.metadata  # type: ignore[union-attr]

    def chain_for(meta_url: str, retrieval_url: str) -> None:
        md = SignersMetadata.create(
            "Github", meta_url, retrieval_url, retrieved_at=0, content=evil_signers.raw
        )
        md = SignersMetadata.from_bytes(md.raw)

        def env(data: bytes) -> SignaturesFile:
            return SignaturesFile.empty().with_entry(
                attacker.public_key, attacker.sign(sha512(data))
            )

        info = CurrentSignersInfo(evil_signers, env(evil_signers.raw), md, env(md.raw))
        doc = {"chain": SignersChain.build([], info).to_dict()}
        (root / "v1" / "get_signers_chain" / setup.index).write_text(json.dumps(doc))

    # The forged first entry claims the genuine forge URL: the forge serves other bytes.
    chain_for(genuine_meta.url, genuine_meta.retrieval_url)
    err = refused(setup.world, tmp_path / "a.bin", "-u", url, "--full-check")
    assert "SignersChainFirstEntryMismatch" in err
    # Pointing at the attacker's own project instead fails the realm check.
    evil_url = setup.world.forge.put_github_file(
        "evil", "app", "main", "asfaload.signers/index.json", evil_signers.raw
    )
    chain_for(
        evil_url, "https://raw.githubusercontent.com/evil/app/main/asfaload.signers/index.json"
    )
    err = refused(setup.world, tmp_path / "b.bin", "-u", url, "--full-check")
    assert "SignersChainTrustAnchorOutsideRealm" in err


def test_signatures_removed_from_mirror(
    setup: Setup, mirror: tuple[Path, str], tmp_path: Path
) -> None:
    root, url = mirror
    files(root, layout.signatures_path(setup.index)).unlink()
    err = refused(setup.world, tmp_path / "x.bin", "-u", url)
    assert "not fully signed" in err


def test_fake_revocation_on_mirror_is_refused(
    setup: Setup, mirror: tuple[Path, str], tmp_path: Path
) -> None:
    root, url = mirror
    files(root, layout.revocation_path(setup.index)).write_bytes(b'{"timestamp": 1}')
    err = refused(setup.world, tmp_path / "x.bin", "-u", url)
    assert "revocation record" in err


# --- multi-signer workflows ---------------------------------------------------------------------
def test_second_signature_by_same_key_is_refused(setup: Setup, tmp_path: Path) -> None:
    w = setup.world
    a, b, c = setup.signers
    rel = w.forge.add_github_release("acme", "app", "v1.1", {"app.bin": b"one-one"})
    index = register_release(w, c, "--github-release-url", rel)
    assert w.as_signer(c, "sign-pending", index).lines == ["Success! Signature submitted"]
    dup = w.as_signer(c, "sign-pending", index, ok=False)
    assert dup.returncode == 1 and dup.stderr.startswith("Error: ")
    assert index not in w.as_signer(c, "list-pending").stdout
    # The duplicate did not count: one more distinct signer is still needed.
    status = w.as_signer(a, "signature-status", index).lines
    assert status[0] == f"{index}: pending"
    assert "threshold 2, 1 more needed" in status[2], status
    assert w.as_signer(a, "sign-pending", index).lines == [
        "Success! Signature submitted (complete)"
    ]
    # b was never needed; the release is complete and b has nothing pending.
    assert index not in w.as_signer(b, "list-pending").stdout
    out = tmp_path / "app11.bin"
    w.download("https://github.com/acme/app/releases/download/v1.1/app.bin", "-o", str(out))
    assert out.read_bytes() == b"one-one"


def test_non_signer_cannot_sign_but_may_read_the_state(setup: Setup) -> None:
    w = setup.world
    outsider = w.new_keys("mallory")
    rel = w.forge.add_github_release("acme", "app", "v1.2", {"app.bin": b"x"})
    index = register_release(w, setup.signers[0], "--github-release-url", rel)
    assert w.as_signer(outsider, "list-pending").lines == ["No pending signatures found."]
    assert w.as_signer(outsider, "sign-pending", index, ok=False).returncode == 1
    # The state is public (the mirror shows it to anyone); an outsider's signed query reads it.
    assert w.as_signer(outsider, "signature-status", index).lines[0] == f"{index}: pending"
