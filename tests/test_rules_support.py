"""Support for the pure rules tests (no tests here): in-memory keys, signers files, a tree driver."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from asfaload import layout
from asfaload.crypto import PublicKey, SecretKey, Signature, sha512
from asfaload.model import SignerGroup, SignersFile
from asfaload.model.index import PublishedFile, ReleaseIndex
from asfaload.model.metadata import SignersMetadata
from asfaload.rules import AddSignatures, Change, DictTree, apply, pending_request
from asfaload.rules.ops import Op, Register
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
