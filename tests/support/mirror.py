"""Real histories written through the store (every kind of operation, real keys), and commits
forged around the rules with pygit2, as a buggy writer or an intruder with write access would."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from asfaload import layout
from asfaload.crypto import SecretKey, sha512
from asfaload.model.index import PublishedFile, ReleaseIndex
from asfaload.model.revocation import RevocationDocument
from asfaload.rules import ProposeUpdate, Register, RegisterRelease, Revoke
from asfaload.rules.tree import Change
from asfaload.store import MAIN, Mirror, apply_change
from tests.support.rules import (
    ACTIVE_SF,
    PENDING_SF,
    T0,
    P,
    metadata_bytes,
    pk,
    sig,
    sign_op,
    signers_bytes,
)


def index_bytes(tag: str) -> bytes:
    f = PublishedFile(
        f"tool-{tag}.tgz",
        "Sha256",
        f"https://github.com/acme/tool/releases/download/{tag}/tool-{tag}.tgz",
        sha512(tag.encode()).hex()[:64],
    )
    return ReleaseIndex.create([f], mirrored_on=T0).to_bytes()


@dataclass
class Keys:
    """One project's keys: artifact a+b (2 of 2), admin ad, revoker r; c joins on update."""

    algorithm: str = "ed25519"
    k: dict[str, SecretKey] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("a", "b", "ad", "r", "c"):
            self.k[name] = SecretKey.generate(self.algorithm)

    def signers(self) -> bytes:
        k = self.k
        return signers_bytes(
            [([k["a"], k["b"]], 2)], admin=[([k["ad"]], 1)], revocation=[([k["r"]], 1)]
        )

    def updated_signers(self) -> bytes:
        k = self.k
        return signers_bytes(
            [([k["a"], k["c"]], 1)],
            admin=[([k["ad"]], 1)],
            revocation=[([k["r"]], 1)],
            timestamp=T0 + 10,
        )


def release_path(tag: str) -> str:
    return layout.github_release_index_path(P, tag)


def lifecycle(m: Mirror, w: Keys) -> list[str]:
    """Every kind of operation, through the store: returns the commit messages, oldest first."""
    k = w.k
    done: list[str] = []

    def submit(op: object) -> None:
        res = m.submit(op)  # type: ignore[arg-type]
        done.append(res.change.message)

    raw = w.signers()
    submit(Register(P, raw, metadata_bytes(raw), pk(k["ad"])))
    for name in ("a", "b", "ad", "r"):
        submit(sign_op(m.view(), PENDING_SF, k[name]))
    assert m.view().read(ACTIVE_SF) == raw
    v1 = release_path("v1.0")
    submit(RegisterRelease(v1, index_bytes("v1.0"), pk(k["a"])))
    submit(sign_op(m.view(), v1, k["a"]))
    submit(sign_op(m.view(), v1, k["b"]))
    doc = RevocationDocument.create(
        sha512(m.view().read(v1) or b""), pk(k["r"]), int(time.time()), reason="compromised"
    ).to_bytes()
    submit(Revoke(v1, doc, sig(k["r"], doc), pk(k["r"])))
    assert m.view().read(layout.revocation_path(v1)) == doc
    v2 = release_path("v2.0")
    submit(RegisterRelease(v2, index_bytes("v2.0"), pk(k["b"])))
    submit(sign_op(m.view(), v2, k["b"]))
    new = w.updated_signers()
    submit(ProposeUpdate(P, new, metadata_bytes(new, when=T0 + 10), pk(k["ad"])))
    submit(sign_op(m.view(), PENDING_SF, k["ad"]))
    submit(sign_op(m.view(), PENDING_SF, k["c"]))
    assert m.view().read(ACTIVE_SF) == new
    v3 = release_path("v3.0")
    submit(RegisterRelease(v3, index_bytes("v3.0"), pk(k["c"])))
    submit(sign_op(m.view(), v3, k["c"]))
    assert m.view().read(layout.signatures_path(v3)) is not None
    return done


def forge_commit(
    m: Mirror,
    change: Change | None = None,
    *,
    message: str | None = None,
    tree: pygit2.Oid | None = None,
    parents: list[pygit2.Oid] | None = None,
    when: int | None = None,
) -> str:
    """A commit on main made without the rules (as a buggy writer or an intruder would)."""
    repo = pygit2.Repository(m.path)
    tip = repo.references[MAIN].peel(pygit2.Commit)
    if tree is None:
        assert change is not None
        tree = apply_change(repo, tip.tree, change)
    sig_ = pygit2.Signature("asfaload", "asfaload@localhost", when or tip.commit_time, 0)
    msg = message if message is not None else (change.message if change else "forged")
    cid = repo.create_commit(None, sig_, sig_, msg, tree, parents or [tip.id])
    repo.references[MAIN].set_target(cid)
    return str(cid)


def forge_onto(repo: Path, change: Change) -> str:
    """A commit written straight into ``repo``'s main with pygit2: no hook, no rules."""
    r = pygit2.Repository(str(repo))
    tip = r.references[MAIN].peel(pygit2.Commit)
    tree = apply_change(r, tip.tree, change)
    who = pygit2.Signature("intruder", "intruder@localhost", tip.commit_time, 0)
    cid = r.create_commit(None, who, who, change.message, tree, [tip.id])
    r.references[MAIN].set_target(cid)
    return str(cid)
