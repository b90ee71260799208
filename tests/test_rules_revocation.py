"""Pure rules tests for revocation (``docs/formats.md``, "Revocation")."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asfaload import layout
from asfaload.crypto import sha512
from asfaload.errors import (
    AsfaloadError,
    ConflictError,
    NotAuthorizedError,
    NotFoundError,
    RuleViolation,
)
from asfaload.model import SignaturesFile
from asfaload.model.revocation import RevocationDocument
from asfaload.rules import (
    AddSignatures,
    DictTree,
    FileStatus,
    RegisterRelease,
    RequestKind,
    Revoke,
    apply,
    file_status,
    missing_signers,
    pending_request,
    who_may_sign,
)
from asfaload.rules.engine import REVOCATION_CLOCK_SKEW
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
    revoke_op,
    run,
    sig,
    sign_op,
    signed_release,
    signers_bytes,
    step,
)

PREV = layout.pending_revocation_path(INDEX)


def test_revocation_threshold_one_finalises_in_one_exact_change() -> None:
    tree, k = signed_release()
    op = revoke_op(tree, k["r1"])
    change = apply(tree, op, T0 + 60)
    complete_sigs = tree.read(layout.signatures_path(INDEX))
    assert change.deletes == {layout.signatures_path(INDEX)}
    assert dict(change.writes) == {
        layout.revocation_path(INDEX): op.document,
        layout.revocation_signatures_path(INDEX): SignaturesFile.empty()
        .with_entry(pk(k["r1"]), op.signature)
        .to_bytes(),
        layout.revocation_signers_path(INDEX): tree.read(ACTIVE_SF),
        layout.revoked_signatures_path(INDEX): complete_sigs,
    }
    after = step(tree, change)
    assert file_status(after, INDEX) is FileStatus.REVOKED
    # The finalised revocation document itself verifies against the revocation groups.
    assert file_status(after, layout.revocation_path(INDEX)) is FileStatus.COMPLETE


def test_revocation_with_threshold_two_collects_cosignatures() -> None:
    tree, k = signed_release(rev_threshold=2)
    tree = run(tree, revoke_op(tree, k["r1"]))
    assert tree.read(PREV) is not None
    assert pending_request(tree, PREV).kind is RequestKind.REVOCATION
    assert who_may_sign(tree, PREV) == {pk(k["r1"]), pk(k["r2"])}
    assert missing_signers(tree, PREV) == {pk(k["r2"])}
    # Still complete (and downloadable) until the revocation completes.
    assert file_status(tree, INDEX) is FileStatus.COMPLETE
    # A second initiation is refused: co-sign instead.
    with pytest.raises(ConflictError, match="Should be signed instead"):
        apply(tree, revoke_op(tree, k["r2"]), T0)
    # Artifact signers cannot co-sign a revocation.
    doc = tree.read(PREV) or b""
    with pytest.raises(NotAuthorizedError):
        apply(tree, AddSignatures(PREV, pk(k["a"]), {PREV: sig(k["a"], doc)}), T0)
    with pytest.raises(ConflictError, match="already collected"):
        apply(tree, AddSignatures(PREV, pk(k["r1"]), {PREV: sig(k["r1"], doc)}), T0)
    change = apply(tree, sign_op(tree, PREV, k["r2"]), T0)
    assert {
        PREV,
        layout.pending_signatures_path(PREV),
        layout.signatures_path(INDEX),
    } == change.deletes
    after = step(tree, change)
    assert file_status(after, INDEX) is FileStatus.REVOKED
    sigs = SignaturesFile.from_bytes(after.read(layout.revocation_signatures_path(INDEX)) or b"")
    assert sigs.keys() == {pk(k["r1"]), pk(k["r2"])}


@pytest.mark.parametrize("who", ["a", "ad"])
def test_revocation_by_non_revoker_is_403(who: str) -> None:
    tree, k = signed_release()
    with pytest.raises(NotAuthorizedError, match="not authorized to revoke"):
        apply(tree, revoke_op(tree, k[who]), T0)
    (outsider,) = keys(1)
    with pytest.raises(NotAuthorizedError):
        apply(tree, revoke_op(tree, outsider), T0)


def test_initiator_must_be_the_submitter() -> None:
    # Fix: upstream never compares initiator with the submitting key.
    tree, k = signed_release()
    with pytest.raises(RuleViolation, match="initiator does not match"):
        apply(tree, revoke_op(tree, k["r1"], initiator=k["r2"]), T0)


def test_digest_must_match_the_subject() -> None:
    tree, k = signed_release()
    with pytest.raises(RuleViolation, match="Digest mismatch"):
        apply(tree, revoke_op(tree, k["r1"], digest=sha512(b"another file")), T0)


def test_revocation_signature_must_verify() -> None:
    tree, k = signed_release()
    good = revoke_op(tree, k["r1"])
    forged = Revoke(INDEX, good.document, sig(k["r1"], b"something else"), pk(k["r1"]))
    with pytest.raises(RuleViolation, match="Invalid signature"):
        apply(tree, forged, T0)


def test_revocation_dated_in_the_future_is_refused() -> None:
    tree, k = signed_release()
    with pytest.raises(RuleViolation, match="future"):
        apply(tree, revoke_op(tree, k["r1"], when=T0 + REVOCATION_CLOCK_SKEW + 1), T0)
    apply(tree, revoke_op(tree, k["r1"], when=T0 + REVOCATION_CLOCK_SKEW), T0)


def test_only_fully_signed_files_can_be_revoked() -> None:
    tree, k = signed_release()
    other = layout.github_release_index_path(P, "v2")
    tree = run(tree, RegisterRelease(other, index_bytes(), pk(k["a"])))
    doc = RevocationDocument.create(sha512(tree.read(other) or b""), pk(k["r1"]), T0).to_bytes()
    with pytest.raises(ConflictError, match="has not been fully signed"):
        apply(tree, Revoke(other, doc, sig(k["r1"], doc), pk(k["r1"])), T0)
    with pytest.raises(NotFoundError):
        apply(tree, Revoke(P + "/nope", doc, sig(k["r1"], doc), pk(k["r1"])), T0)
    md = layout.metadata_path(P)
    with pytest.raises(RuleViolation, match="Only signed release files"):
        apply(tree, Revoke(ACTIVE_SF, doc, sig(k["r1"], doc), pk(k["r1"])), T0)
    with pytest.raises(RuleViolation, match="Only signed release files"):
        apply(tree, Revoke(md, doc, sig(k["r1"], doc), pk(k["r1"])), T0)


def test_revocation_is_irreversible() -> None:
    tree, k = signed_release()
    tree = run(tree, revoke_op(tree, k["r1"]))
    assert file_status(tree, INDEX) is FileStatus.REVOKED
    data = tree.read(INDEX) or b""
    # No second revocation, no signatures, no re-registration of the same release.
    with pytest.raises(RuleViolation, match="already revoked"):
        apply(tree, revoke_op(tree, k["r2"]), T0)
    with pytest.raises(ConflictError, match="revoked"):
        apply(tree, AddSignatures(INDEX, pk(k["a"]), {INDEX: sig(k["a"], data)}), T0)
    with pytest.raises(ConflictError, match="Release already registered"):
        apply(tree, RegisterRelease(INDEX, index_bytes(), pk(k["a"])), T0)
    # Nor can the finalised revocation files take signatures.
    rv = layout.revocation_path(INDEX)
    with pytest.raises(AsfaloadError):
        apply(tree, AddSignatures(rv, pk(k["r2"]), {rv: sig(k["r2"], tree.read(rv) or b"")}), T0)
    assert file_status(tree, INDEX) is FileStatus.REVOKED


def test_revocation_uses_current_signers_not_the_local_copy() -> None:
    # After an update removes r2 from the revokers, r2 can no longer revoke.
    tree, k = signed_release()
    (r3,) = keys(1)
    from asfaload.rules import ProposeUpdate

    new = signers_bytes(
        [([k["a"], k["b"]], 2)],
        admin=[([k["ad"]], 1)],
        revocation=[([k["r1"], r3], 1)],
        timestamp=T0 + 5,
    )
    tree = run(tree, ProposeUpdate(P, new, metadata_bytes(new), pk(k["ad"])))
    tree = run(tree, sign_op(tree, PENDING_SF, k["ad"]))
    tree = run(tree, sign_op(tree, PENDING_SF, r3))
    assert tree.read(ACTIVE_SF) == new
    with pytest.raises(NotAuthorizedError):
        apply(tree, revoke_op(tree, k["r2"]), T0 + 10)
    tree = run(tree, revoke_op(tree, r3), T0 + 10)
    assert tree.read(layout.revocation_signers_path(INDEX)) == new
    assert file_status(tree, INDEX) is FileStatus.REVOKED


def test_apply_is_deterministic() -> None:
    tree, k = signed_release(rev_threshold=2)
    op = revoke_op(tree, k["r1"])
    assert apply(tree, op, T0 + 7) == apply(DictTree(tree.files()), op, T0 + 7)


# --- robustness: any path in a submitted operation either applies or is refused cleanly --------
_paths = st.one_of(
    st.sampled_from(
        [
            INDEX,
            PREV,
            PENDING_SF,
            ACTIVE_SF,
            layout.metadata_path(P),
            layout.history_path(P),
            layout.signatures_path(INDEX),
            layout.pending_signatures_path(INDEX),
            layout.local_signers_path(INDEX),
            P,
            "tuf",
        ]
    ),
    st.lists(
        st.sampled_from(
            ["a", "..", ".", "", ".git", P, "asfaload.signers", "x.signatures.json.pending"]
        ),
        min_size=1,
        max_size=4,
    ).map("/".join),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(subject=_paths, extra=st.lists(_paths, max_size=2))
def test_add_signatures_on_any_path_never_crashes(subject: str, extra: list[str]) -> None:
    tree, k = _CACHED
    sk = k["r1"]
    try:
        op = AddSignatures(
            subject, pk(sk), {p: sig(sk, tree.read(p) or b"") for p in [subject, *extra]}
        )
        change = apply(tree, op, T0)
    except AsfaloadError:
        return
    # Anything accepted was a real pending request this key may sign.
    assert subject == PREV and change.writes


_CACHED = signed_release(rev_threshold=2)
_CACHED = (run(_CACHED[0], revoke_op(_CACHED[0], _CACHED[1]["r2"])), _CACHED[1])
