"""Support for the pure rules tests: in-memory keys, signers files, a tree driver, a fully signed
release and revocations of it."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from asfaload import layout
from asfaload.crypto import PublicKey, SecretKey, Signature, sha512
from asfaload.model import SignerGroup, SignersFile
from asfaload.model.index import PublishedFile, ReleaseIndex
from asfaload.model.metadata import SignersMetadata
from asfaload.model.revocation import RevocationDocument
from asfaload.rules import (
    AddSignatures,
    Change,
    DictTree,
    FileStatus,
    apply,
    file_status,
    pending_request,
)
from asfaload.rules.ops import Op, Register, RegisterRelease, Revoke
from asfaload.rules.tree import TreeView
from asfaload.store import Mirror

P = "https/github.com/443/acme/tool"
URL = "https://github.com/acme/tool/blob/main/asfaload.signers.json"
T0 = 1_700_000_000


def keys(n: int, algorithm: str = "ed25519") -> list[SecretKey]:
    return [SecretKey.generate(algorithm) for _ in range(n)]


def group(sks: Sequence[SecretKey], threshold: int) -> SignerGroup:
    return SignerGroup(tuple(sk.public_key for sk in sks), threshold)


def signers_bytes(
    artifact: Iterable[tuple[Sequence[SecretKey], int]],
    admin: Iterable[tuple[Sequence[SecretKey], int]] | None = None,
    master: Iterable[tuple[Sequence[SecretKey], int]] | None = None,
    revocation: Iterable[tuple[Sequence[SecretKey], int]] | None = None,
    timestamp: int = T0,
) -> bytes:
    def gs(spec: Iterable[tuple[Sequence[SecretKey], int]] | None) -> list[SignerGroup] | None:
        return None if spec is None else [group(k, t) for k, t in spec]

    sf = SignersFile.create(
        artifact_signers=gs(artifact) or [],
        admin_keys=gs(admin),
        master_keys=gs(master),
        revocation_keys=gs(revocation),
        timestamp=timestamp,
    )
    return sf.raw


def metadata_bytes(signers: bytes, url: str = URL, when: int = T0) -> bytes:
    return SignersMetadata.create(
        "Github",
        url,
        url.replace("github.com", "raw.githubusercontent.com"),
        retrieved_at=when,
        content=signers,
    ).to_bytes()


def index_bytes(name: str = "t.tgz", hash_hex: str = "cd" * 32) -> bytes:
    """A one-file GitHub release index for ``INDEX`` (v1.0)."""
    f = PublishedFile(
        name, "Sha256", f"https://github.com/acme/tool/releases/download/v1.0/{name}", hash_hex
    )
    return ReleaseIndex.create([f], mirrored_on=T0).to_bytes()


def sig(sk: SecretKey, data: bytes) -> Signature:
    return sk.sign(sha512(data))


def step(tree: DictTree, change: Change) -> DictTree:
    files = tree.files()
    for p in change.deletes:
        del files[p]
    files.update(change.writes)
    return DictTree(files)


def run(tree: DictTree, op: Op, now: int = T0) -> DictTree:
    return step(tree, apply(tree, op, now))


def sign_op(tree: TreeView, subject: str, sk: SecretKey) -> AddSignatures:
    """The AddSignatures a well-behaved client would send: one signature per request file."""
    req = pending_request(tree, subject)
    sigs = {}
    for f in req.files:
        data = tree.read(f)
        assert data is not None
        sigs[f] = sig(sk, data)
    return AddSignatures(subject, sk.public_key, sigs)


def register_and_activate(
    mirror: Mirror, project: str, signers: bytes, sks: Sequence[SecretKey]
) -> None:
    """Register ``signers`` for ``project`` (submitted by the first key), then have every key
    sign it and its metadata: the project is active afterwards."""
    mirror.submit(Register(project, signers, metadata_bytes(signers), sks[0].public_key))
    subject = layout.signers_file_path(project, pending=True)
    for sk in sks:
        mirror.submit(sign_op(mirror.view(), subject, sk))


def pk(sk: SecretKey) -> PublicKey:
    return sk.public_key


PENDING_SF = layout.signers_file_path(P, pending=True)
ACTIVE_SF = layout.signers_file_path(P)
INDEX = layout.github_release_index_path(P, "v1.0")


def signed_release(rev_threshold: int = 1):
    """Active project (artifact a,b 2-of-2; admin ad; revokers r1,r2) with INDEX fully signed."""
    a, b, ad, r1, r2 = keys(5)
    raw = signers_bytes([([a, b], 2)], admin=[([ad], 1)], revocation=[([r1, r2], rev_threshold)])
    tree = run(DictTree(), Register(P, raw, metadata_bytes(raw), pk(ad)))
    for k in (a, b, ad, r1, r2):
        tree = run(tree, sign_op(tree, PENDING_SF, k))
    assert tree.read(ACTIVE_SF) == raw
    tree = run(tree, RegisterRelease(INDEX, index_bytes(), pk(a)))
    tree = run(tree, sign_op(tree, INDEX, a))
    tree = run(tree, sign_op(tree, INDEX, b))
    assert file_status(tree, INDEX) is FileStatus.COMPLETE
    return tree, dict(a=a, b=b, ad=ad, r1=r1, r2=r2)


def revoke_op(
    tree: DictTree,
    sk: SecretKey,
    *,
    initiator: SecretKey | None = None,
    digest: bytes | None = None,
    when: int = T0,
) -> Revoke:
    doc = RevocationDocument.create(
        digest if digest is not None else sha512(tree.read(INDEX) or b""),
        pk(initiator or sk),
        when,
        reason="compromised",
    ).to_bytes()
    return Revoke(INDEX, doc, sig(sk, doc), pk(sk))
