"""Acceptance audit of issue 3: ONE table of the rules, row by row — every kind of request
(artifact, initial signers, signers update, revocation, revoked artifact), who may sign each, the
attacks the issue names and the invariants of ``docs/formats.md`` ("Who signs what").

Each row starts from a named state of one project (built once, in memory, with real ed25519
signatures), applies one operation through :func:`asfaload.rules.apply` and expects either an
outcome (the subject still pending / complete / revoked) or an error class with its HTTP status.
Several rows encode a deliberate departure from upstream Asfaload and would fail on its behaviour.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import pytest

from asfaload import layout
from asfaload.crypto import SecretKey, sha512
from asfaload.errors import (
    AsfaloadError,
    ConflictError,
    NotAuthorizedError,
    NotFoundError,
    RuleViolation,
)
from asfaload.model.index import PublishedFile, ReleaseIndex
from asfaload.model.revocation import RevocationDocument
from asfaload.rules import (
    AddSignatures,
    Change,
    DictTree,
    FileStatus,
    ProposeUpdate,
    Register,
    RegisterRelease,
    Revoke,
    apply,
    file_status,
)
from asfaload.rules.ops import Op
from asfaload.rules.push import check_push
from tests.support.rules import (
    ACTIVE_SF,
    INDEX,
    PENDING_SF,
    T0,
    P,
    keys,
    metadata_bytes,
    pk,
    run,
    sig,
    sign_op,
    signers_bytes,
)

PREV = layout.pending_revocation_path(INDEX)


@dataclass(frozen=True)
class K:
    a: SecretKey
    b: SecretKey
    c: SecretKey
    ad: SecretKey
    m: SecretKey
    r1: SecretKey
    r2: SecretKey
    out: SecretKey
    ad2: SecretKey
    n: SecretKey


@cache
def k() -> K:
    return K(*keys(10))


def _raw() -> bytes:
    x = k()
    return signers_bytes(
        [([x.a, x.b, x.c], 2)],
        admin=[([x.ad], 1)],
        master=[([x.m], 1)],
        revocation=[([x.r1, x.r2], 2)],
    )


def _new_raw() -> bytes:
    # The update: new admin ad2, newly added artifact signer n; master m kept.
    x = k()
    return signers_bytes(
        [([x.a, x.b, x.c, x.n], 2)],
        admin=[([x.ad2], 1)],
        master=[([x.m], 1)],
        revocation=[([x.r1, x.r2], 2)],
        timestamp=T0 + 10,
    )


def _index() -> bytes:
    f = PublishedFile(
        "t.tgz", "Sha256", "https://github.com/acme/tool/releases/download/v1.0/t.tgz", "ab" * 32
    )
    return ReleaseIndex.create([f], mirrored_on=T0).to_bytes()


def _sign(tree: DictTree, subject: str, *who: SecretKey) -> DictTree:
    for sk in who:
        tree = run(tree, sign_op(tree, subject, sk))
    return tree


def _revoke(tree: DictTree, sk: SecretKey, initiator: SecretKey | None = None) -> Revoke:
    doc = RevocationDocument.create(
        sha512(tree.read(INDEX) or b""), pk(initiator or sk), T0, reason="compromised"
    ).to_bytes()
    return Revoke(INDEX, doc, sig(sk, doc), pk(sk))


# --- named states (each built from the previous one) ----------------------------------------------
@cache
def state(name: str) -> DictTree:
    x = k()
    raw = _raw()
    if name == "empty":
        return DictTree()
    if name == "registered":
        return run(state("empty"), Register(P, raw, metadata_bytes(raw), pk(x.ad)))
    if name == "initial-all-but-revokers":
        return _sign(state("registered"), PENDING_SF, x.a, x.b, x.c, x.ad, x.m)
    if name == "active":
        return _sign(state("initial-all-but-revokers"), PENDING_SF, x.r1, x.r2)
    if name == "release":
        return run(state("active"), RegisterRelease(INDEX, _index(), pk(x.a)))
    if name == "release-a":
        return _sign(state("release"), INDEX, x.a)
    if name == "released":
        return _sign(state("release-a"), INDEX, x.b)
    if name == "revocation-pending":
        return run(state("released"), _revoke(state("released"), x.r1))
    if name == "revoked":
        return _sign(state("revocation-pending"), PREV, x.r2)
    if name == "update":
        new = _new_raw()
        return run(state("active"), ProposeUpdate(P, new, metadata_bytes(new), pk(x.ad)))
    raise KeyError(name)


@dataclass(frozen=True)
class Row:
    id: str
    start: str
    op: Callable[[DictTree, K], Op | _Bound]
    # Either an error class (with its HTTP status) or a check of the tree after the op.
    error: type[AsfaloadError] | None = None
    status: int | None = None
    after: Callable[[DictTree], bool] | None = None


def _signs(subject: str, who: str) -> Callable[[DictTree, K], Op]:
    return lambda tree, x: sign_op(tree, subject, getattr(x, who))


def _raw_sig(subject: str, who: str) -> Callable[[DictTree, K], Op]:
    # A signature made over the subject's bytes without asking the engine who may sign (an
    # attacker's request); sign_op would refuse to build one for a path with no request.
    def op(tree: DictTree, x: K) -> Op:
        sk = getattr(x, who)
        files = [subject]
        if subject == PENDING_SF:  # a signers request is signed with its metadata
            files.append(layout.metadata_path(P, pending=True))
        return AddSignatures(subject, pk(sk), {f: sig(sk, tree.read(f) or b"x") for f in files})

    return op


def _pending(path: str) -> Callable[[DictTree], bool]:
    return lambda t: file_status(t, path) is FileStatus.PENDING


def _complete(path: str) -> Callable[[DictTree], bool]:
    return lambda t: file_status(t, path) is FileStatus.COMPLETE


def _revoked(t: DictTree) -> bool:
    return file_status(t, INDEX) is FileStatus.REVOKED


def _upd(*who: str) -> Callable[[DictTree, K], Op | _Bound]:
    # The update state signed by all of ``who`` but the last; the row applies the last one.
    def op(tree: DictTree, x: K) -> Op | _Bound:
        t = _sign(state("update"), PENDING_SF, *(getattr(x, w) for w in who[:-1]))
        assert t.read(PENDING_SF) is not None
        return _Bound(t, sign_op(t, PENDING_SF, getattr(x, who[-1])))

    return op


@dataclass(frozen=True)
class _Bound:
    """An op together with the tree it must be applied to (for rows that extend a state)."""

    tree: DictTree
    op: Op


ROWS = [
    # Artifact: artifact_signers thresholds, counted by distinct keys.
    Row("artifact-below-threshold", "release", _signs(INDEX, "a"), after=_pending(INDEX)),
    Row("artifact-threshold-met", "release-a", _signs(INDEX, "b"), after=_complete(INDEX)),
    Row("artifact-duplicate-key-counted-once", "release-a", _signs(INDEX, "a"), ConflictError, 409),
    Row(
        "artifact-by-admin-not-authorised",
        "release",
        _raw_sig(INDEX, "ad"),
        NotAuthorizedError,
        403,
    ),
    Row(
        "artifact-by-master-not-authorised",
        "release",
        _raw_sig(INDEX, "m"),
        NotAuthorizedError,
        403,
    ),
    Row("artifact-by-non-signer", "release", _raw_sig(INDEX, "out"), NotAuthorizedError, 403),
    Row("artifact-after-completion", "released", _raw_sig(INDEX, "c"), ConflictError, 409),
    Row(
        "artifact-invalid-signature",
        "release",
        lambda t, x: AddSignatures(INDEX, pk(x.a), {INDEX: sig(x.b, t.read(INDEX) or b"")}),
        RuleViolation,
        400,
    ),
    # InitialSigners: every key of the file signs, revocation keys too.
    Row(
        "initial-missing-a-revocation-key-stays-pending",
        "initial-all-but-revokers",
        _signs(PENDING_SF, "r1"),
        after=lambda t: t.read(ACTIVE_SF) is None and t.read(PENDING_SF) is not None,
    ),
    Row(
        "initial-every-key-activates",
        "initial-all-but-revokers",
        lambda t, x: _Bound(
            _sign(t, PENDING_SF, x.r1), sign_op(_sign(t, PENDING_SF, x.r1), PENDING_SF, x.r2)
        ),
        after=lambda t: t.read(ACTIVE_SF) == _raw() and t.read(PENDING_SF) is None,
    ),
    Row(
        "initial-by-non-signer", "registered", _raw_sig(PENDING_SF, "out"), NotAuthorizedError, 403
    ),
    # Signers update: (old admin|master) AND (new admin|master) AND every newly added key.
    Row(
        "update-old-admin-only-pending",
        "update",
        _signs(PENDING_SF, "ad"),
        after=lambda t: t.read(ACTIVE_SF) == _raw(),
    ),
    Row(
        "update-missing-newly-added-key-pending",
        "update",
        _upd("ad", "ad2"),
        after=lambda t: t.read(ACTIVE_SF) == _raw(),
    ),
    Row(
        "update-old-and-new-admin-and-added-key-activates",
        "update",
        _upd("ad", "ad2", "n"),
        after=lambda t: t.read(ACTIVE_SF) == _new_raw(),
    ),
    Row(
        "update-master-instead-of-old-admin-activates",
        "update",
        _upd("m", "ad2", "n"),
        after=lambda t: t.read(ACTIVE_SF) == _new_raw(),
    ),
    Row(
        "update-without-old-admin-or-master-pending",
        "update",
        _upd("ad2", "n"),
        after=lambda t: t.read(ACTIVE_SF) == _raw(),
    ),
    Row("update-by-non-signer", "update", _raw_sig(PENDING_SF, "out"), NotAuthorizedError, 403),
    # Revocation: the ACTIVE file's revocation groups; initiator = submitter; irreversible.
    Row(
        "revocation-initiated-pending",
        "released",
        lambda t, x: _revoke(t, x.r1),
        after=lambda t: t.read(PREV) is not None and not _revoked(t),
    ),
    Row("revocation-cosigned-revoked", "revocation-pending", _signs(PREV, "r2"), after=_revoked),
    Row(
        "revocation-by-non-revoker",
        "released",
        lambda t, x: _revoke(t, x.a),
        NotAuthorizedError,
        403,
    ),
    Row("revocation-by-admin", "released", lambda t, x: _revoke(t, x.ad), NotAuthorizedError, 403),
    Row(
        "revocation-initiator-is-not-submitter",
        "released",
        lambda t, x: _revoke(t, x.r1, initiator=x.r2),
        RuleViolation,
        400,
    ),
    Row(
        "revocation-cosign-by-non-revoker",
        "revocation-pending",
        _raw_sig(PREV, "a"),
        NotAuthorizedError,
        403,
    ),
    Row(
        "revocation-of-incomplete-file",
        "release-a",
        lambda t, x: _revoke(t, x.r1),
        ConflictError,
        409,
    ),
    Row(
        "revocation-of-missing-file",
        "active",
        lambda t, x: Revoke(P + "/nope", b"{}", sig(x.r1, b"{}"), pk(x.r1)),
        NotFoundError,
        404,
    ),
    # RevokedArtifact: no signing possible; revocation is final.
    Row("revoked-artifact-signature", "revoked", _raw_sig(INDEX, "c"), ConflictError, 409),
    Row("revoke-again", "revoked", lambda t, x: _revoke(t, x.r1), RuleViolation, 400),
    Row(
        "revoked-release-re-registered",
        "revoked",
        lambda t, x: RegisterRelease(INDEX, _index(), pk(x.a)),
        ConflictError,
        409,
    ),
    # Attacks and invariants: requests only the server created; immutable signed bytes.
    Row(
        "signature-on-file-without-request",
        "active",
        _raw_sig(layout.history_path(P), "a"),
        RuleViolation,
        400,
    ),
    Row(
        "signature-on-missing-file",
        "active",
        _raw_sig(P + "/nothing.json", "a"),
        RuleViolation,
        400,
    ),
    Row("signature-on-active-signers-file", "active", _raw_sig(ACTIVE_SF, "a"), ConflictError, 409),
    Row(
        "re-registration-409",
        "active",
        lambda t, x: Register(P, _new_raw(), metadata_bytes(_new_raw()), pk(x.ad2)),
        ConflictError,
        409,
    ),
    Row(
        "re-registration-while-pending-409",
        "registered",
        lambda t, x: Register(P, _raw(), metadata_bytes(_raw()), pk(x.ad)),
        ConflictError,
        409,
    ),
    Row(
        "release-bytes-immutable-once-pending",
        "release-a",
        lambda t, x: RegisterRelease(INDEX, _index().replace(b"ab", b"cd"), pk(x.a)),
        ConflictError,
        409,
    ),
    Row(
        "second-update-while-one-pending",
        "update",
        lambda t, x: ProposeUpdate(P, _new_raw(), metadata_bytes(_new_raw()), pk(x.ad)),
        ConflictError,
        409,
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_rules_table(row: Row) -> None:
    tree = state(row.start)
    before = tree.files()
    op = row.op(tree, k())
    if isinstance(op, _Bound):
        tree, op = op.tree, op.op
    if row.error is not None:
        with pytest.raises(row.error) as exc:
            apply(tree, op, T0)
        assert exc.value.http_status == row.status
        assert "/tmp" not in str(exc.value) and "\n" not in str(exc.value)
        assert state(row.start).files() == before  # a refused op changes nothing
        return
    assert row.after is not None
    after = run(tree, op)
    assert row.after(after), row.id


# --- un-revoking and transitions as exactly one change -------------------------------------------
def test_un_revoking_by_push_is_rejected() -> None:
    # The rules never derive the deletion of revocation files: a push that does is refused.
    tree = state("revoked")
    revocation_files = [
        p for p in tree.files() if p.startswith(INDEX) and ("revocation" in p or "revoked" in p)
    ]
    assert revocation_files
    undo = Change("un-revoke", deletes=frozenset(revocation_files))
    with pytest.raises(AsfaloadError):
        check_push(tree, undo, T0 + 1)
    # And restoring the plain complete signatures file beside them is refused as well.
    complete = state("released")
    restore = Change(
        "restore",
        writes={layout.signatures_path(INDEX): complete.read(layout.signatures_path(INDEX)) or b""},
    )
    with pytest.raises(AsfaloadError):
        check_push(tree, restore, T0 + 1)


def test_every_transition_is_one_change_with_its_deletions() -> None:
    x = k()
    t = state("initial-all-but-revokers")
    t = _sign(t, PENDING_SF, x.r1)
    change = apply(t, sign_op(t, PENDING_SF, x.r2), T0)
    pending_paths = {p for p in t.files() if "/asfaload.signers.pending/" in p}
    assert pending_paths and pending_paths <= change.deletes  # the whole pending dir goes
    assert ACTIVE_SF in change.writes
    # Artifact completion: pending envelope deleted, complete envelope + local signers copy written.
    change = apply(state("release-a"), sign_op(state("release-a"), INDEX, x.b), T0)
    assert layout.pending_signatures_path(INDEX) in change.deletes
    assert {layout.signatures_path(INDEX), layout.local_signers_path(INDEX)} <= set(change.writes)
    assert change.writes[layout.local_signers_path(INDEX)] == _raw()


def test_failed_operations_leave_the_tree_unchanged() -> None:
    # apply is pure: a refused op returns nothing and the tree it was given is untouched.
    tree = state("released")
    before = tree.files()
    for row in ROWS:
        if row.error is None or row.start != "released":
            continue
        op = row.op(tree, k())
        assert not isinstance(op, _Bound)
        with pytest.raises(row.error):
            apply(tree, op, T0)
    assert tree.files() == before
