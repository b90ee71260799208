"""The file report (``asfaload.rules.status``): one state per file, who signed, who is needed."""

from __future__ import annotations

import pytest

from asfaload import layout
from asfaload.errors import NotFoundError, ThresholdNotMetError
from asfaload.model import SignaturesFile
from asfaload.rules import DictTree, FileStatus, ProposeUpdate, Register, RegisterRelease
from asfaload.rules.status import file_report
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
    sign_op,
    signed_release,
    signers_bytes,
)


def _ids(keys_: tuple) -> list[str]:
    return [str(k) for k in keys_]


def _project_2_of_3():
    a, b, c, ad = keys(4)
    raw = signers_bytes([([a, b, c], 2)], admin=[([ad], 1)])
    tree = run(DictTree(), Register(P, raw, metadata_bytes(raw), pk(ad)))
    for k in (a, b, c, ad):
        tree = run(tree, sign_op(tree, PENDING_SF, k))
    tree = run(tree, RegisterRelease(INDEX, index_bytes(), pk(a)))
    return tree, a, b, c, ad


def test_pending_release_names_who_signed_and_who_is_needed() -> None:
    tree, a, b, c, _ = _project_2_of_3()
    tree = run(tree, sign_op(tree, INDEX, a))
    report = file_report(tree, INDEX)
    assert report.status is FileStatus.PENDING and not report.is_complete
    (group,) = report.groups
    assert (group.role, group.threshold, group.needed, group.met) == ("artifact", 2, 1, False)
    assert group.signed == (pk(a),)
    assert set(group.missing) == {pk(b), pk(c)}
    assert set(report.missing) == {pk(b), pk(c)}
    assert report.signed == (pk(a),)
    doc = report.to_dict()
    assert doc["status"] == "pending" and doc["is_complete"] is False
    assert doc["groups"][0]["signed"] == [{"key_id": pk(a).key_id, "public_key": str(pk(a))}]
    assert doc["revocation"] is None


def test_complete_release_needs_nobody_and_lists_its_signers() -> None:
    tree, a, b, c, _ = _project_2_of_3()
    tree = run(tree, sign_op(tree, INDEX, c))
    tree = run(tree, sign_op(tree, INDEX, b))
    report = file_report(tree, INDEX)
    assert report.status is FileStatus.COMPLETE and report.is_complete
    assert set(report.signed) == {pk(b), pk(c)}
    assert report.missing == () and report.groups[0].missing == ()
    assert report.groups[0].met and report.groups[0].needed == 0


def test_revoked_release_tells_when_and_by_whom() -> None:
    tree, k = signed_release(rev_threshold=2)
    tree = run(tree, revoke_op(tree, k["r1"], when=T0 + 5), T0 + 60)
    pending = file_report(tree, INDEX)
    # Still complete while the revocation collects signatures; the revocation says who is needed.
    assert pending.status is FileStatus.COMPLETE
    assert pending.revocation is not None
    assert pending.revocation.status is FileStatus.PENDING
    assert pending.revocation.signed == (pk(k["r1"]),)
    assert pending.revocation.groups[0].missing == (pk(k["r2"]),)
    prev = layout.pending_revocation_path(INDEX)
    tree = run(tree, sign_op(tree, prev, k["r2"]), T0 + 70)
    report = file_report(tree, INDEX)
    assert report.status is FileStatus.REVOKED
    assert set(report.signed) == {pk(k["a"]), pk(k["b"])}
    rev = report.revocation
    assert rev is not None and rev.status is FileStatus.COMPLETE
    assert rev.file_path == layout.revocation_path(INDEX)
    assert rev.initiator == pk(k["r1"])
    assert rev.timestamp == "2023-11-14T22:13:25Z"  # T0 + 5
    assert rev.reason == "compromised"
    assert set(rev.signed) == {pk(k["r1"]), pk(k["r2"])}
    assert report.to_dict()["status"] == "revoked"


def test_initial_signers_file_needs_every_key() -> None:
    a, b, ad = keys(3)
    raw = signers_bytes([([a, b], 1)], admin=[([ad], 1)])
    tree = run(DictTree(), Register(P, raw, metadata_bytes(raw), pk(ad)))
    tree = run(tree, sign_op(tree, PENDING_SF, b))
    report = file_report(tree, PENDING_SF)
    assert report.status is FileStatus.PENDING and report.kind.value == "signers-initial"
    (group,) = report.groups
    assert group.threshold == 3 and group.needed == 2
    assert set(report.missing) == {pk(a), pk(ad)}
    for k in (a, ad):
        tree = run(tree, sign_op(tree, PENDING_SF, k))
    active = file_report(tree, ACTIVE_SF)
    assert active.status is FileStatus.COMPLETE and active.kind.value == "signers-initial"
    assert set(active.signed) == {pk(a), pk(b), pk(ad)}


def test_signers_update_needs_an_old_and_a_new_admin_and_the_added_key() -> None:
    a, ad, new_ad = keys(3)
    raw = signers_bytes([([a], 1)], admin=[([ad], 1)])
    tree = run(DictTree(), Register(P, raw, metadata_bytes(raw), pk(ad)))
    for k in (a, ad):
        tree = run(tree, sign_op(tree, PENDING_SF, k))
    new = signers_bytes([([a], 1)], admin=[([new_ad], 1)], timestamp=T0 + 10)
    tree = run(tree, ProposeUpdate(P, new, metadata_bytes(new, when=T0 + 10), pk(ad)))
    tree = run(tree, sign_op(tree, PENDING_SF, ad))
    report = file_report(tree, PENDING_SF)
    assert report.kind.value == "signers-update"
    roles = {g.role: g for g in report.groups}
    assert set(roles) == {"old admin", "new admin", "every added key"}
    assert roles["old admin"].met and roles["old admin"].missing == ()
    assert roles["new admin"].missing == (pk(new_ad),)
    assert roles["every added key"].missing == (pk(new_ad),)
    assert report.missing == (pk(new_ad),)
    tree = run(tree, sign_op(tree, PENDING_SF, new_ad))
    active = file_report(tree, ACTIVE_SF)
    assert active.status is FileStatus.COMPLETE and active.kind.value == "signers-update"
    assert all(g.met for g in active.groups)


def test_forged_complete_file_and_unknown_files_raise() -> None:
    tree, a, _, _, _ = _project_2_of_3()
    files = tree.files()
    del files[layout.pending_signatures_path(INDEX)]
    files[layout.signatures_path(INDEX)] = SignaturesFile.empty().to_bytes()
    files[layout.local_signers_path(INDEX)] = tree.read(ACTIVE_SF) or b""
    with pytest.raises(ThresholdNotMetError):
        file_report(DictTree(files), INDEX)
    with pytest.raises(NotFoundError):
        file_report(tree, P + "/nothing.json")
    with pytest.raises(NotFoundError):
        file_report(tree, layout.history_path(P))
