"""Pure rules-engine tests: registration, activation, updates, releases and artifact signing.

Every test drives :func:`asfaload.rules.apply` over an in-memory :class:`DictTree` with real
signatures (ed25519 and minisign keys generated in memory). Tests commented "Fix:" encode a
deliberate departure from upstream Asfaload and would fail on its behaviour.
"""

from __future__ import annotations

import json

import pytest

from asfaload import layout
from asfaload.crypto import sha512
from asfaload.errors import (
    AsfaloadError,
    ConflictError,
    FormatError,
    NotAuthorizedError,
    RuleViolation,
    ThresholdNotMetError,
)
from asfaload.model import SignaturesFile, SignersFile
from asfaload.model.history import SignersHistory
from asfaload.model.timestamps import format_rfc3339
from asfaload.rules import (
    AddSignatures,
    DictTree,
    FileStatus,
    ProposeUpdate,
    Register,
    RegisterRelease,
    RequestKind,
    apply,
    can_sign,
    file_status,
    find_project,
    governing_signers,
    missing_signers,
    pending_request,
    required_signers,
    who_may_sign,
)
from tests.support.rules import (
    ACTIVE_SF,
    INDEX,
    PENDING_SF,
    T0,
    P,
    index_bytes,
    keys,
    metadata_bytes,
    pk,
    run,
    sig,
    sign_op,
    signers_bytes,
    step,
)

PENDING_MD = layout.metadata_path(P, pending=True)
ACTIVE_MD = layout.metadata_path(P)


def register(tree: DictTree, signers: bytes, submitter) -> DictTree:
    return run(tree, Register(P, signers, metadata_bytes(signers), submitter))


def activate(signers: bytes, sks, submitter=None) -> DictTree:
    """Register and let every key in ``sks`` sign."""
    tree = register(DictTree(), signers, submitter or pk(sks[0]))
    for sk in sks:
        if layout.signers_project_of(PENDING_SF) and tree.read(PENDING_SF) is not None:
            tree = run(tree, sign_op(tree, PENDING_SF, sk))
    assert tree.read(ACTIVE_SF) == signers
    return tree


# --- registration -------------------------------------------------------------------------------
def test_register_writes_exactly_the_pending_request() -> None:
    a, b = keys(2)
    raw = signers_bytes([([a, b], 2)])
    md = metadata_bytes(raw)
    change = apply(DictTree(), Register(P, raw, md, pk(a)), T0)
    empty = SignaturesFile.empty().to_bytes()
    assert dict(change.writes) == {
        PENDING_SF: raw,
        PENDING_MD: md,
        layout.kind_path(P, pending=True): b"initial\n",
        layout.pending_signatures_path(PENDING_SF): empty,
        layout.pending_signatures_path(PENDING_MD): empty,
        layout.history_path(P): SignersHistory(()).to_bytes(),
    }
    assert change.deletes == frozenset()
    assert change.message == f"register {P}"


def test_registration_requires_every_key_including_revocation_keys() -> None:
    # Fix: upstream activates without the revocation key, which then never proved
    # possession of its key.
    a, b, r = keys(3)
    raw = signers_bytes([([a, b], 1)], revocation=[([r], 1)])
    tree = register(DictTree(), raw, pk(a))
    assert required_signers(tree, PENDING_SF) == sorted(str(pk(k)) for k in (a, b, r))
    assert who_may_sign(tree, PENDING_SF) == {pk(a), pk(b), pk(r)}
    tree = run(tree, sign_op(tree, PENDING_SF, a))
    tree = run(tree, sign_op(tree, PENDING_SF, b))
    assert tree.read(ACTIVE_SF) is None, "activated without the revocation key"
    assert missing_signers(tree, PENDING_SF) == {pk(r)}
    assert can_sign(tree, PENDING_SF, pk(r)) and not can_sign(tree, PENDING_SF, pk(a))
    tree = run(tree, sign_op(tree, PENDING_SF, r))
    assert tree.read(ACTIVE_SF) == raw
    assert file_status(tree, ACTIVE_SF) is FileStatus.COMPLETE


def test_activation_renames_the_whole_pending_dir_in_one_change() -> None:
    (a,) = keys(1)
    raw = signers_bytes([([a], 1)])
    tree = register(DictTree(), raw, pk(a))
    op = sign_op(tree, PENDING_SF, a)
    change = apply(tree, op, T0 + 5)
    pending_files = {p for p in tree.files() if "/asfaload.signers.pending/" in p}
    assert change.deletes == frozenset(pending_files)
    assert set(change.writes) == {
        ACTIVE_SF,
        ACTIVE_MD,
        layout.kind_path(P),
        layout.signatures_path(ACTIVE_SF),
        layout.signatures_path(ACTIVE_MD),
    }
    sigs = SignaturesFile.from_bytes(change.writes[layout.signatures_path(ACTIVE_SF)])
    assert sigs[pk(a)] == op.signatures[PENDING_SF]
    # An initial activation writes no history entry.
    assert layout.history_path(P) not in change.writes
    after = step(tree, change)
    assert not after.is_dir(layout.signers_dir(P, pending=True))
    assert governing_signers(after, INDEX).raw == raw


def test_signers_request_needs_signatures_on_signers_file_and_metadata() -> None:
    (a,) = keys(1)
    raw = signers_bytes([([a], 1)])
    tree = register(DictTree(), raw, pk(a))
    md = tree.read(PENDING_MD)
    assert md is not None
    only_file = AddSignatures(PENDING_SF, pk(a), {PENDING_SF: sig(a, raw)})
    with pytest.raises(RuleViolation, match="No signature provided for .*metadata"):
        apply(tree, only_file, T0)
    swapped = AddSignatures(PENDING_SF, pk(a), {PENDING_SF: sig(a, raw), PENDING_MD: sig(a, raw)})
    with pytest.raises(RuleViolation, match="Invalid signature"):
        apply(tree, swapped, T0)
    extra = AddSignatures(
        PENDING_SF,
        pk(a),
        {PENDING_SF: sig(a, raw), PENDING_MD: sig(a, md), layout.history_path(P): sig(a, b"x")},
    )
    with pytest.raises(RuleViolation, match="Unexpected signature"):
        apply(tree, extra, T0)
    with pytest.raises(RuleViolation, match="metadata is signed with it"):
        apply(tree, AddSignatures(PENDING_MD, pk(a), {PENDING_MD: sig(a, md)}), T0)


@pytest.mark.parametrize("algorithm", ["ed25519", "minisign"])
def test_register_and_activate_with_each_algorithm(algorithm: str) -> None:
    a, b = keys(2, algorithm)
    raw = signers_bytes([([a, b], 2)])
    tree = activate(raw, [a, b])
    sigs = SignaturesFile.from_bytes(tree.read(layout.signatures_path(ACTIVE_SF)) or b"")
    assert sigs.keys() == {pk(a), pk(b)}
    for k in (a, b):
        pk(k).verify(sha512(raw), sigs[pk(k)])


def test_register_rejections() -> None:
    a, b, outsider = keys(3)
    raw = signers_bytes([([a, b], 2)])
    md = metadata_bytes(raw)
    with pytest.raises(NotAuthorizedError):
        apply(DictTree(), Register(P, raw, md, pk(outsider)), T0)
    with pytest.raises(RuleViolation, match="does not match the signers file"):
        apply(DictTree(), Register(P, raw, metadata_bytes(raw + b" "), pk(a)), T0)
    with pytest.raises(FormatError):
        apply(DictTree(), Register(P, b"{not json", md, pk(a)), T0)
    with pytest.raises(FormatError):
        apply(DictTree(), Register(P, raw, b"{}", pk(a)), T0)


def test_reregistration_is_a_conflict_and_changes_nothing() -> None:
    a, b = keys(2)
    raw = signers_bytes([([a, b], 2)])
    tree = register(DictTree(), raw, pk(a))
    other = signers_bytes([([b], 1)], timestamp=T0 + 1)
    with pytest.raises(ConflictError, match="already registered or registration is in progress"):
        apply(tree, Register(P, other, metadata_bytes(other), pk(b)), T0)
    tree = run(tree, sign_op(tree, PENDING_SF, a))
    tree = run(tree, sign_op(tree, PENDING_SF, b))
    with pytest.raises(ConflictError):
        apply(tree, Register(P, other, metadata_bytes(other), pk(b)), T0)


def test_failed_registration_leaves_no_trace() -> None:
    # Fix: upstream leaves the project dir behind and blocks the project forever.
    a, outsider = keys(2)
    raw = signers_bytes([([a], 1)])
    tree = DictTree()
    with pytest.raises(NotAuthorizedError):
        apply(tree, Register(P, raw, metadata_bytes(raw), pk(outsider)), T0)
    assert run(tree, Register(P, raw, metadata_bytes(raw), pk(a))).read(PENDING_SF) == raw


def test_projects_never_nest() -> None:
    (a,) = keys(1)
    raw = signers_bytes([([a], 1)])
    tree = register(DictTree(), raw, pk(a))
    inner = P + "/releases"
    with pytest.raises(ConflictError, match="inside the registered project"):
        apply(tree, Register(inner, raw, metadata_bytes(raw), pk(a)), T0)
    outer = "https/github.com/443/acme"
    with pytest.raises(ConflictError):
        apply(tree, Register(outer, raw, metadata_bytes(raw), pk(a)), T0)


def test_duplicate_key_in_a_group_is_refused() -> None:
    # Fix: [A, A] with threshold 2 would be met by A alone upstream.
    (a,) = keys(1)
    doc = json.loads(signers_bytes([([a], 1)]))
    grp = doc["artifact_signers"][0]
    grp["signers"] = grp["signers"] * 2
    grp["threshold"] = 2
    dup = json.dumps(doc, indent=2).encode()
    with pytest.raises(FormatError, match="duplicate key"):
        apply(DictTree(), Register(P, dup, metadata_bytes(dup), pk(a)), T0)


# --- signatures: who, when, how often -------------------------------------------------------------
def released() -> tuple[DictTree, list]:  # type: ignore[type-arg]
    a, b, c, admin = keys(4)
    raw = signers_bytes([([a, b, c], 2)], admin=[([admin], 1)])
    tree = activate(raw, [a, b, c, admin], submitter=pk(admin))
    tree = run(tree, RegisterRelease(INDEX, index_bytes(), pk(a)))
    return tree, [a, b, c, admin]


def test_register_release_opens_an_empty_request() -> None:
    tree, (a, *_rest) = released()
    assert tree.read(INDEX) == index_bytes()
    assert tree.read(layout.pending_signatures_path(INDEX)) == SignaturesFile.empty().to_bytes()
    assert file_status(tree, INDEX) is FileStatus.PENDING
    assert pending_request(tree, INDEX).kind is RequestKind.ARTIFACT


def test_release_registered_twice_is_409_and_keeps_signatures() -> None:
    # Fix: upstream rewrites the index and wipes the collected signatures.
    tree, (a, b, *_r) = released()
    tree = run(tree, sign_op(tree, INDEX, a))
    with pytest.raises(ConflictError, match="Release already registered"):
        apply(tree, RegisterRelease(INDEX, index_bytes("other.tgz"), pk(b)), T0)
    assert SignaturesFile.from_bytes(
        tree.read(layout.pending_signatures_path(INDEX)) or b""
    ).keys() == {pk(a)}


def test_register_release_rejections() -> None:
    tree, (a, *_r) = released()
    (outsider,) = keys(1)
    other = layout.github_release_index_path(P, "v2")
    with pytest.raises(NotAuthorizedError):
        apply(tree, RegisterRelease(other, index_bytes(), pk(outsider)), T0)
    with pytest.raises(RuleViolation, match="No registered project"):
        apply(
            tree,
            RegisterRelease(
                "https/github.com/443/x/y/releases/tag/v1/asfaload.index.json", index_bytes(), pk(a)
            ),
            T0,
        )
    with pytest.raises(RuleViolation, match="Invalid release index path"):
        apply(tree, RegisterRelease(P + "/releases/tag/v2/other.json", index_bytes(), pk(a)), T0)
    with pytest.raises(RuleViolation, match="Invalid release index path"):
        apply(
            tree,
            RegisterRelease(P + "/asfaload.signers/asfaload.index.json", index_bytes(), pk(a)),
            T0,
        )
    with pytest.raises(FormatError):
        apply(tree, RegisterRelease(other, b"[]", pk(a)), T0)
    # Not yet active: registration still pending.
    (k,) = keys(1)
    raw = signers_bytes([([k], 1)])
    pending_tree = register(DictTree(), raw, pk(k))
    with pytest.raises(RuleViolation, match="No active signers file"):
        apply(pending_tree, RegisterRelease(INDEX, index_bytes(), pk(k)), T0)


def test_artifact_completion_is_one_exact_change() -> None:
    tree, (a, b, *_r) = released()
    tree = run(tree, sign_op(tree, INDEX, a))
    assert file_status(tree, INDEX) is FileStatus.PENDING
    op = sign_op(tree, INDEX, b)
    change = apply(tree, op, T0)
    assert change.deletes == {layout.pending_signatures_path(INDEX)}
    assert set(change.writes) == {layout.signatures_path(INDEX), layout.local_signers_path(INDEX)}
    assert change.writes[layout.local_signers_path(INDEX)] == tree.read(ACTIVE_SF)
    assert SignaturesFile.from_bytes(change.writes[layout.signatures_path(INDEX)]).keys() == {
        pk(a),
        pk(b),
    }
    assert change.message.startswith(f"sign {INDEX} by {pk(b)}")
    after = step(tree, change)
    assert file_status(after, INDEX) is FileStatus.COMPLETE
    assert missing_signers(after, INDEX) == frozenset()


def test_signature_after_completion_is_409() -> None:
    tree, (a, b, c, _admin) = released()
    tree = run(tree, sign_op(tree, INDEX, a))
    tree = run(tree, sign_op(tree, INDEX, b))
    late = AddSignatures(INDEX, pk(c), {INDEX: sig(c, tree.read(INDEX) or b"")})
    with pytest.raises(ConflictError, match="already complete"):
        apply(tree, late, T0)


def test_duplicate_signature_by_same_key_is_409() -> None:
    # Fix: upstream silently overwrites the earlier signature.
    tree, (a, *_r) = released()
    tree = run(tree, sign_op(tree, INDEX, a))
    with pytest.raises(ConflictError, match="already collected"):
        apply(tree, sign_op(tree, INDEX, a), T0)


def test_signature_by_non_signer_or_wrong_role_is_403() -> None:
    tree, (_a, _b, _c, admin) = released()
    (outsider,) = keys(1)
    data = tree.read(INDEX) or b""
    for k in (outsider, admin):  # admins are not artifact signers
        with pytest.raises(NotAuthorizedError):
            apply(tree, AddSignatures(INDEX, pk(k), {INDEX: sig(k, data)}), T0)


def test_invalid_signature_is_400_and_leaks_no_path() -> None:
    # Fix: upstream answers 500 with the absolute server path.
    tree, (a, *_r) = released()
    bad = AddSignatures(INDEX, pk(a), {INDEX: sig(a, b"other bytes")})
    with pytest.raises(RuleViolation) as info:
        apply(tree, bad, T0)
    assert info.value.http_status == 400
    assert str(info.value) == f"Invalid signature for {INDEX}"


def test_signatures_only_for_server_created_requests() -> None:
    # Fix: upstream accepts signatures for any existing file (history, metadata, ...).
    tree, (a, _b, _c, admin) = released()
    for path in (layout.history_path(P), ACTIVE_MD, ACTIVE_SF, layout.signatures_path(ACTIVE_SF)):
        data = tree.read(path) or b""
        with pytest.raises(AsfaloadError) as info:
            apply(tree, AddSignatures(path, pk(admin), {path: sig(admin, data)}), T0)
        assert isinstance(info.value, (RuleViolation, ConflictError))
    files = tree.files()
    files[P + "/notes.txt"] = b"hello"
    planted = DictTree(files)
    with pytest.raises(RuleViolation, match="No pending signature request"):
        apply(
            planted,
            AddSignatures(P + "/notes.txt", pk(a), {P + "/notes.txt": sig(a, b"hello")}),
            T0,
        )
    with pytest.raises(RuleViolation, match="File not found"):
        apply(tree, AddSignatures(P + "/missing", pk(a), {P + "/missing": sig(a, b"")}), T0)


def test_threshold_counts_distinct_keys_per_group() -> None:
    a, b, c, d = keys(4)
    raw = signers_bytes([([a, b], 1), ([c, d], 2)])
    tree = activate(raw, [a, b, c, d])
    tree = run(tree, RegisterRelease(INDEX, index_bytes(), pk(a)))
    for k in (a, b, c):
        tree = run(tree, sign_op(tree, INDEX, k))
        assert file_status(tree, INDEX) is FileStatus.PENDING, "every group must meet its threshold"
    assert missing_signers(tree, INDEX) == {pk(d)}
    tree = run(tree, sign_op(tree, INDEX, d))
    assert file_status(tree, INDEX) is FileStatus.COMPLETE


def test_forged_complete_file_is_detected() -> None:
    tree, (a, b, *_r) = released()
    tree = run(tree, sign_op(tree, INDEX, a))
    tree = run(tree, sign_op(tree, INDEX, b))
    files = tree.files()
    only_a = SignaturesFile.empty().with_entry(pk(a), sig(a, files[INDEX]))
    files[layout.signatures_path(INDEX)] = only_a.to_bytes()
    with pytest.raises(ThresholdNotMetError):
        file_status(DictTree(files), INDEX)


# --- updates ----------------------------------------------------------------------------------------
def test_update_flow_writes_history_with_raw_bytes() -> None:
    # Fix: upstream re-serialises the old file, so old signatures cannot be re-verified.
    a, b, c = keys(3)
    old = signers_bytes([([a, b], 2)], admin=[([a], 1)])
    tree = activate(old, [a, b])
    old_sigs = tree.read(layout.signatures_path(ACTIVE_SF))
    old_md = tree.read(ACTIVE_MD)
    new = signers_bytes([([a, c], 2)], admin=[([a], 1)], timestamp=T0 + 10)
    tree = run(tree, ProposeUpdate(P, new, metadata_bytes(new, when=T0 + 10), pk(a)))
    assert pending_request(tree, PENDING_SF).kind is RequestKind.SIGNERS_UPDATE
    assert tree.read(layout.kind_path(P, pending=True)) == b"update\n"
    # While the update is pending, the old file still governs.
    assert governing_signers(tree, INDEX).raw == old
    # a alone meets old admin and new admin, but c is newly added and must sign.
    tree = run(tree, sign_op(tree, PENDING_SF, a))
    assert tree.read(ACTIVE_SF) == old
    assert missing_signers(tree, PENDING_SF) == {pk(c)}
    now = T0 + 1234
    change = apply(tree, sign_op(tree, PENDING_SF, c), now)
    after = step(tree, change)
    assert after.read(ACTIVE_SF) == new
    assert not after.is_dir(layout.signers_dir(P, pending=True))
    history = SignersHistory.from_bytes(after.read(layout.history_path(P)) or b"")
    (entry,) = history.entries
    assert entry.obsoleted_at == format_rfc3339(now)
    assert entry.signers_file.raw == old
    assert entry.metadata.raw == old_md
    assert entry.signatures.to_bytes() == old_sigs
    for k in (a, b):
        pk(k).verify(sha512(entry.signers_file.raw), entry.signatures[pk(k)])
        pk(k).verify(sha512(entry.metadata.raw), entry.metadata_signatures[pk(k)])
    # Fix: the active file of an update re-verifies as an update (upstream re-checks it
    # as an initial file, needing b, who is not in it any more... and fails).
    assert file_status(after, ACTIVE_SF) is FileStatus.COMPLETE
    # Determinism: the same inputs give the same change.
    assert (
        apply(tree, sign_op(tree, PENDING_SF, c), now).writes[layout.history_path(P)]
        == change.writes[layout.history_path(P)]
    )


def test_update_needs_old_and_new_admin_or_master() -> None:
    # Roles swap: old admin x, new admin y. x alone is not enough; y must sign too.
    x, y, art = keys(3)
    old = signers_bytes([([art], 1)], admin=[([x], 1)], master=None)
    tree = activate(old, [x, art], submitter=pk(x))
    new = signers_bytes([([art], 1)], admin=[([y], 1)], timestamp=T0 + 1)
    tree = run(tree, ProposeUpdate(P, new, metadata_bytes(new), pk(x)))
    assert who_may_sign(tree, PENDING_SF) == {pk(x), pk(y)}, "artifact-only keys do not vote"
    tree = run(tree, sign_op(tree, PENDING_SF, x))
    assert tree.read(ACTIVE_SF) == old, "new admin threshold not met yet"
    tree = run(tree, sign_op(tree, PENDING_SF, y))
    assert tree.read(ACTIVE_SF) == new


def test_update_by_master_keys() -> None:
    adm, m1, m2, art = keys(4)
    old = signers_bytes([([art], 1)], admin=[([adm], 1)], master=[([m1, m2], 2)])
    tree = activate(old, [adm, m1, m2, art], submitter=pk(adm))
    new = signers_bytes([([art], 1)], admin=[([art], 1)], master=[([m1, m2], 2)], timestamp=T0 + 1)
    tree = run(tree, ProposeUpdate(P, new, metadata_bytes(new), pk(m1)))
    assert who_may_sign(tree, PENDING_SF) == {pk(adm), pk(m1), pk(m2), pk(art)}
    tree = run(tree, sign_op(tree, PENDING_SF, m1))
    assert tree.read(ACTIVE_SF) == old
    tree = run(tree, sign_op(tree, PENDING_SF, m2))
    assert tree.read(ACTIVE_SF) == new, "old master AND new master met, no new key"


def test_propose_update_rejections() -> None:
    a, b, outsider = keys(3)
    old = signers_bytes([([a, b], 2)], admin=[([a], 1)])
    new = signers_bytes([([a], 1)], timestamp=T0 + 1)
    with pytest.raises(RuleViolation, match="is not registered"):
        apply(DictTree(), ProposeUpdate(P, new, metadata_bytes(new), pk(a)), T0)
    pending = register(DictTree(), old, pk(a))
    with pytest.raises(RuleViolation, match="no active signers file"):
        apply(pending, ProposeUpdate(P, new, metadata_bytes(new), pk(a)), T0)
    tree = activate(old, [a, b])
    with pytest.raises(NotAuthorizedError):  # b is an artifact signer, not admin/master
        apply(tree, ProposeUpdate(P, new, metadata_bytes(new), pk(b)), T0)
    with pytest.raises(NotAuthorizedError):
        apply(tree, ProposeUpdate(P, new, metadata_bytes(new), pk(outsider)), T0)
    stale = signers_bytes([([a], 1)], timestamp=T0)
    with pytest.raises(RuleViolation, match="Timestamp of update"):
        apply(tree, ProposeUpdate(P, stale, metadata_bytes(stale), pk(a)), T0)
    tree = run(tree, ProposeUpdate(P, new, metadata_bytes(new), pk(a)))
    newer = signers_bytes([([a], 1)], timestamp=T0 + 2)
    with pytest.raises(ConflictError, match="already pending"):
        apply(tree, ProposeUpdate(P, newer, metadata_bytes(newer), pk(a)), T0)


def test_planted_signers_dir_below_project_root_governs_nothing() -> None:
    # Fix: upstream lets the NEAREST asfaload.signers dir govern a path.
    a, b = keys(2)
    raw = signers_bytes([([a, b], 2)])
    tree = activate(raw, [a, b])
    evil = signers_bytes([([b], 1)])
    files = tree.files()
    files[P + "/releases/asfaload.signers/asfaload.signers.json"] = evil
    files[P + "/releases/asfaload.signers.history.json"] = SignersHistory(()).to_bytes()
    planted = DictTree(files)
    assert find_project(planted, INDEX) == P
    assert governing_signers(planted, INDEX).raw == raw
    planted = run(planted, RegisterRelease(INDEX, index_bytes(), pk(a)))
    planted = run(planted, sign_op(planted, INDEX, b))
    assert file_status(planted, INDEX) is FileStatus.PENDING


def test_signers_file_model_is_the_one_stored() -> None:
    (a,) = keys(1)
    raw = signers_bytes([([a], 1)])
    tree = activate(raw, [a])
    assert SignersFile.parse(tree.read(ACTIVE_SF) or b"").all_signer_keys() == {pk(a)}
