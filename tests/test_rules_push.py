"""Push-initiated operations: a pushed diff is accepted only if the rules derive exactly it."""

from __future__ import annotations

import pytest

from asfaload import layout
from asfaload.errors import AsfaloadError, RuleViolation
from asfaload.model import SignaturesFile
from asfaload.rules import (
    AddSignatures,
    Change,
    DictTree,
    ProposeUpdate,
    RegisterRelease,
    Revoke,
    apply,
)
from asfaload.rules.push import check_push, infer_operation
from tests.support.rules import (
    ACTIVE_SF,
    INDEX,
    PENDING_SF,
    T0,
    P,
    keys,
    metadata_bytes,
    pk,
    revoke_op,
    run,
    sig,
    sign_op,
    signed_release,
    signers_bytes,
)

PREV = layout.pending_revocation_path(INDEX)


def _fresh_release():
    tree, k = signed_release(rev_threshold=2)
    other = layout.github_release_index_path(P, "v2")
    tree = run(tree, RegisterRelease(other, tree.read(INDEX) or b"", pk(k["a"])))
    return tree, k, other


def test_each_allowed_push_round_trips() -> None:
    tree, k, other = _fresh_release()
    cases: list[tuple[DictTree, AddSignatures | Revoke]] = []
    cases.append((tree, sign_op(tree, other, k["a"])))  # partial artifact signature
    t2 = run(tree, sign_op(tree, other, k["a"]))
    cases.append((t2, sign_op(t2, other, k["b"])))  # completes the artifact
    cases.append((tree, revoke_op(tree, k["r1"])))  # revocation initiation (threshold 2)
    t3 = run(tree, revoke_op(tree, k["r1"]))
    cases.append((t3, sign_op(t3, PREV, k["r2"])))  # co-signature finalising the revocation
    # Signers update: partial, then activation with a history entry.
    (n,) = keys(1)
    new = signers_bytes(
        [([k["a"], k["b"]], 2)],
        admin=[([k["ad"]], 1)],
        revocation=[([k["r1"], n], 1)],
        timestamp=T0 + 9,
    )
    t4 = run(tree, ProposeUpdate(P, new, metadata_bytes(new), pk(k["ad"])))
    cases.append((t4, sign_op(t4, PENDING_SF, k["ad"])))
    t5 = run(t4, sign_op(t4, PENDING_SF, k["ad"]))
    cases.append((t5, sign_op(t5, PENDING_SF, n)))
    for view, op in cases:
        change = apply(view, op, T0 + 100)
        assert infer_operation(view, change) == op
        assert check_push(view, change, T0 + 100) == op
    # The last one really activated.
    assert run(t5, sign_op(t5, PENDING_SF, n), T0 + 100).read(ACTIVE_SF) == new


def test_single_threshold_revocation_push() -> None:
    tree, k = signed_release(rev_threshold=1)
    op = revoke_op(tree, k["r1"])
    change = apply(tree, op, T0)
    assert isinstance(check_push(tree, change, T0), Revoke)


def _tampered(change: Change, **kw) -> Change:
    writes = dict(change.writes)
    writes.update(kw.get("writes", {}))
    for p in kw.get("drop", ()):
        writes.pop(p)
    return Change(
        "pushed", writes, frozenset(change.deletes | set(kw.get("deletes", ()))) - set(writes)
    )


def test_forbidden_pushes_are_rejected() -> None:
    tree, k, other = _fresh_release()
    good = apply(tree, sign_op(tree, other, k["a"]), T0)
    bad_changes = {
        "extra file": _tampered(good, writes={P + "/evil.txt": b"x"}),
        "edited index": _tampered(good, writes={other: b"{}"}),
        "deletion": _tampered(good, deletes={layout.history_path(P)}),
        "signers file edit": _tampered(good, writes={ACTIVE_SF: b"{}"}),
        "nothing": Change("empty"),
        "un-revoke": Change("x", {}, frozenset({layout.signatures_path(INDEX)})),
    }
    for name, change in bad_changes.items():
        with pytest.raises(AsfaloadError):
            check_push(tree, change, T0)
        assert name


def test_push_by_unauthorised_key_is_rejected() -> None:
    tree, k, other = _fresh_release()
    (outsider,) = keys(1)
    data = tree.read(other) or b""
    env = SignaturesFile.empty().with_entry(pk(outsider), sig(outsider, data))
    change = Change("push", {layout.pending_signatures_path(other): env.to_bytes()})
    with pytest.raises(AsfaloadError, match="not an authorized signer"):
        check_push(tree, change, T0)


def test_two_keys_in_one_push_are_rejected() -> None:
    tree, k, other = _fresh_release()
    data = tree.read(other) or b""
    env = (
        SignaturesFile.empty()
        .with_entry(pk(k["a"]), sig(k["a"], data))
        .with_entry(pk(k["b"]), sig(k["b"], data))
    )
    change = Change("push", {layout.pending_signatures_path(other): env.to_bytes()})
    with pytest.raises(RuleViolation, match="exactly one new signature"):
        check_push(tree, change, T0)


def test_skipping_the_completion_transition_is_rejected() -> None:
    # The last signature must complete in the same commit; leaving it pending is not derived.
    tree, k, other = _fresh_release()
    tree = run(tree, sign_op(tree, other, k["a"]))
    op = sign_op(tree, other, k["b"])
    before = SignaturesFile.from_bytes(tree.read(layout.pending_signatures_path(other)) or b"")
    env = before.with_entry(pk(k["b"]), op.signatures[other])
    change = Change("push", {layout.pending_signatures_path(other): env.to_bytes()})
    with pytest.raises(RuleViolation, match="differs from what the rules derive"):
        check_push(tree, change, T0)


def test_wrong_history_time_is_rejected() -> None:
    tree, k = signed_release()
    (n,) = keys(1)
    new = signers_bytes(
        [([k["a"], k["b"]], 2)],
        admin=[([k["ad"]], 1)],
        revocation=[([k["r1"], n], 1)],
        timestamp=T0 + 9,
    )
    tree = run(tree, ProposeUpdate(P, new, metadata_bytes(new), pk(k["ad"])))
    tree = run(tree, sign_op(tree, PENDING_SF, k["ad"]))
    change = apply(tree, sign_op(tree, PENDING_SF, n), T0 + 50)
    check_push(tree, change, T0 + 50)
    with pytest.raises(RuleViolation, match="differs"):
        check_push(tree, change, T0 + 51)


def test_add_signatures_equality_is_by_value() -> None:
    tree, k, other = _fresh_release()
    op = sign_op(tree, other, k["a"])
    assert AddSignatures(op.subject, op.submitter, dict(op.signatures)) == op
    assert isinstance(DictTree(), DictTree)


def test_derive_push_returns_the_derived_change_with_its_message() -> None:
    from asfaload.rules.push import derive_push

    tree, k, other = _fresh_release()
    op = sign_op(tree, other, k["a"])
    change = apply(tree, op, T0 + 100)
    pushed = Change("whatever the pusher wrote", change.writes, change.deletes)
    derived_op, derived = derive_push(tree, pushed, T0 + 100)
    assert derived_op == op == check_push(tree, pushed, T0 + 100)
    assert derived == change and derived.message == change.message
    tampered = dict(change.writes)
    tampered[layout.pending_signatures_path(other)] = SignaturesFile.empty().to_bytes()
    with pytest.raises(AsfaloadError):
        derive_push(tree, Change("x", tampered, change.deletes), T0 + 100)
