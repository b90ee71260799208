"""Pure TUF repository rules: bootstrap, rotation (table-driven, like python-tuf's
test_updater_key_rotations), the draft flow, the checks python-tuf's client would make, and the
online roles re-signed on every published root."""

from __future__ import annotations

import contextlib
import copy
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asfaload.errors import FormatError, TufError
from asfaload.rules.tree import DictTree
from asfaload.tuf import build, repo
from asfaload.tuf._api import Metadata, Root, Snapshot, Targets, Timestamp
from asfaload.tuf.documents import Expirations, key_material, parse_root
from asfaload.tuf.online import OnlineKeyring, keys_json
from tests.support.tuf import (
    NOW,
    REF,
    apply,
    key,
    make_root,
    sig_for,
    signed_by_twins,
    signed_doc,
    twin_key,
    twin_root,
)

EXP = Expirations()


@pytest.fixture(scope="module")
def ring(tmp_path_factory: pytest.TempPathFactory) -> OnlineKeyring:
    r = OnlineKeyring(tmp_path_factory.mktemp("private"))
    r.ensure()
    return r


@pytest.fixture(scope="module")
def pool() -> list[Any]:
    return [key() for _ in range(6)]


def bootstrapped(ring: OnlineKeyring, keys: list[Any], threshold: int) -> tuple[DictTree, Root]:
    root = make_root(1, keys, threshold, ring.ensure())
    out = repo.bootstrap(
        DictTree(), NOW, REF, signed_doc(root, keys[:threshold]), EXP, ring.signers()
    )
    return apply(DictTree(), out.change), root


def load(tree: DictTree, path: str, cls: type[Any]) -> Metadata[Any]:
    raw = tree.read(path)
    assert raw is not None, path
    md = Metadata.from_bytes(raw)
    assert isinstance(md.signed, cls)
    return md


def assert_consistent(tree: DictTree, root: Root) -> None:
    """What python-tuf's client checks: each online role verifies under ``root`` and the
    timestamp/snapshot meta point at the exact stored bytes."""
    ts = load(tree, REF.timestamp, Timestamp)
    root.verify_delegate("timestamp", ts.signed_bytes, ts.signatures)
    sv = ts.signed.snapshot_meta.version
    snap_raw = tree.read(REF.versioned("snapshot", sv))
    assert snap_raw is not None
    ts.signed.snapshot_meta.verify_length_and_hashes(snap_raw)
    snap = load(tree, REF.versioned("snapshot", sv), Snapshot)
    root.verify_delegate("snapshot", snap.signed_bytes, snap.signatures)
    tmeta = snap.signed.meta["targets.json"]
    targets_raw = tree.read(REF.versioned("targets", tmeta.version))
    assert targets_raw is not None
    tmeta.verify_length_and_hashes(targets_raw)
    targets = load(tree, REF.versioned("targets", tmeta.version), Targets)
    root.verify_delegate("targets", targets.signed_bytes, targets.signatures)


# --- bootstrap -----------------------------------------------------------------------------------
def test_bootstrap_publishes_root_and_online_roles(ring, pool):
    tree, root = bootstrapped(ring, pool[:3], 2)
    assert sorted(tree) == sorted(
        [
            "tuf/alice/my-app/1.root.json",
            "tuf/alice/my-app/1.targets.json",
            "tuf/alice/my-app/1.snapshot.json",
            "tuf/alice/my-app/timestamp.json",
        ]
    )
    assert_consistent(tree, root)
    ts = load(tree, REF.timestamp, Timestamp)
    # Commit time plus the default expiry, to the second.
    assert ts.signed.expires.timestamp() == NOW + 86400
    assert repo.verified_trusted_root(tree, REF, NOW) is not None


def test_bootstrap_refuses_under_threshold_expired_and_twice(ring, pool):
    root = make_root(1, pool[:3], 2, ring.ensure())
    with pytest.raises(TufError, match="not signed by its own root threshold"):
        repo.bootstrap(DictTree(), NOW, REF, signed_doc(root, pool[:1]), EXP, ring.signers())
    old = make_root(1, pool[:1], 1, ring.ensure(), days=1, now=NOW - 3 * 86400)
    with pytest.raises(TufError, match="expired"):
        repo.bootstrap(DictTree(), NOW, REF, signed_doc(old, pool[:1]), EXP, ring.signers())
    tree, _ = bootstrapped(ring, pool[:1], 1)
    with pytest.raises(TufError) as exc:
        repo.bootstrap(tree, NOW, REF, signed_doc(root, pool[:2]), EXP, ring.signers())
    assert exc.value.http_status == 409


def test_bootstrap_refuses_online_roles_the_server_cannot_sign(ring, pool):
    foreign = {r: pool[5].public_key for r in ("targets", "snapshot", "timestamp")}
    root = make_root(1, pool[:1], 1, foreign)
    with pytest.raises(TufError, match="online role targets needs 1 key"):
        repo.bootstrap(DictTree(), NOW, REF, signed_doc(root, pool[:1]), EXP, ring.signers())


# --- rotations, table-driven ----------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    old: tuple[int, ...]  # indexes into the key pool
    old_threshold: int
    new: tuple[int, ...]
    new_threshold: int
    sigs: tuple[int, ...]
    published: bool


CASES = {
    "same key": Case((0,), 1, (0,), 1, (0,), True),
    "new key signed by old and new": Case((0,), 1, (1,), 1, (0, 1), True),
    "new key signed by new only": Case((0,), 1, (1,), 1, (1,), False),
    "new key signed by old only": Case((0,), 1, (1,), 1, (0,), False),
    "unsigned": Case((0,), 1, (1,), 1, (), False),
    "2of3 to 2of3 overlapping": Case((0, 1, 2), 2, (1, 2, 3), 2, (1, 2), True),
    "2of3 to 2of3 one old one new": Case((0, 1, 2), 2, (2, 3, 4), 2, (0, 3), False),
    "2of3 to 2of3 enough of each": Case((0, 1, 2), 2, (2, 3, 4), 2, (0, 2, 3), True),
    "threshold raised, new unmet": Case((0, 1), 1, (0, 1, 2), 3, (0, 1), False),
    "threshold raised, met": Case((0, 1), 1, (0, 1, 2), 3, (0, 1, 2), True),
    "threshold lowered": Case((0, 1, 2), 3, (0,), 1, (0, 1, 2), True),
    "old threshold unmet by new keys": Case((0, 1, 2), 2, (3, 4, 5), 2, (2, 3, 4, 5), False),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_rotation_cases(ring, pool, case: Case):
    tree, _ = bootstrapped(ring, [pool[i] for i in case.old], case.old_threshold)
    new = make_root(2, [pool[i] for i in case.new], case.new_threshold, ring.ensure())
    doc = signed_doc(new, [pool[i] for i in case.sigs])
    out = repo.propose_root(tree, NOW, REF, doc, EXP, ring.signers())
    assert out.published is case.published
    after = apply(tree, out.change)
    if case.published:
        assert after.read(REF.versioned("root", 2)) is not None
        assert after.read(REF.pending_root) is None
        assert_consistent(after, new)
        # The stored root is exactly what python-tuf's client accepts after v1 (spec 5.3.4).
        md = Metadata[Root].from_bytes(after.read(REF.versioned("root", 2)) or b"")
        v1 = Metadata[Root].from_bytes(after.read(REF.versioned("root", 1)) or b"")
        v1.signed.verify_delegate("root", md.signed_bytes, md.signatures)
        md.signed.verify_delegate("root", md.signed_bytes, md.signatures)
    else:
        assert after.read(REF.versioned("root", 2)) is None
        assert json.loads(after.read(REF.pending_root) or b"") == doc
        assert not out.progress.complete


def test_signatures_only_from_new_keys_never_publish(ring, pool):
    """The old root's threshold is required whatever else is posted."""
    tree, _ = bootstrapped(ring, pool[:2], 2)
    new = make_root(2, pool[2:5], 1, ring.ensure())
    out = repo.propose_root(tree, NOW, REF, signed_doc(new, []), EXP, ring.signers())
    tree = apply(tree, out.change)
    for signer in pool[2:5]:
        out = repo.add_signature(
            tree,
            NOW,
            REF,
            "root",
            **sig_for(signed_doc(new, []), signer),
            expirations=EXP,
            keys=ring.signers(),
        )
        tree = apply(tree, out.change)
        assert not out.published
    assert out.progress.new.remaining == 0 and out.progress.old.remaining == 2
    assert tree.read(REF.versioned("root", 2)) is None


# --- the draft flow ---------------------------------------------------------------------------------
def test_draft_collects_signatures_one_by_one_then_publishes(ring, pool):
    tree, _ = bootstrapped(ring, pool[:3], 2)
    new = make_root(2, pool[2:5], 2, ring.ensure())
    draft = signed_doc(new, [])
    out = repo.propose_root(tree, NOW, REF, draft, EXP, ring.signers())
    assert not out.published and out.progress.collected == 0
    tree = apply(tree, out.change)
    assert repo.pending_root(tree, REF) == draft

    steps = [(pool[3], False, 1), (pool[0], False, 2), (pool[2], True, 3)]
    for signer, published, collected in steps:
        out = repo.add_signature(
            tree, NOW, REF, "root", **sig_for(draft, signer), expirations=EXP, keys=ring.signers()
        )
        assert out.published is published
        assert out.progress.collected == collected
        tree = apply(tree, out.change)
    # pool[2] is in both roots: one signature counts for both sides.
    assert out.progress.old.signed == tuple(
        sorted([pool[0].public_key.keyid, pool[2].public_key.keyid])
    )
    assert tree.read(REF.pending_root) is None
    assert_consistent(tree, new)
    published = json.loads(tree.read(REF.versioned("root", 2)) or b"")
    assert published["signed"] == draft["signed"]
    assert len(published["signatures"]) == 3


def test_progress_names_signed_and_missing_keys(ring, pool):
    tree, _ = bootstrapped(ring, pool[:2], 2)
    new = make_root(2, pool[2:4], 2, ring.ensure())
    draft = signed_doc(new, [])
    tree = apply(tree, repo.propose_root(tree, NOW, REF, draft, EXP, ring.signers()).change)
    out = repo.add_signature(
        tree, NOW, REF, "root", **sig_for(draft, pool[0]), expirations=EXP, keys=ring.signers()
    )
    p = out.progress
    assert p.old.signed == (pool[0].public_key.keyid,)
    assert p.old.missing == (pool[1].public_key.keyid,)
    assert p.new.signed == ()
    assert set(p.new.missing) == {pool[2].public_key.keyid, pool[3].public_key.keyid}
    assert (p.old.remaining, p.new.remaining) == (1, 2)
    assert "Missing new keys" in p.summary() and pool[1].public_key.keyid in p.summary()


def test_reposting_a_signature_is_idempotent(ring, pool):
    tree, _ = bootstrapped(ring, pool[:2], 2)
    new = make_root(2, pool[:2], 2, ring.ensure())
    draft = signed_doc(new, [])
    tree = apply(tree, repo.propose_root(tree, NOW, REF, draft, EXP, ring.signers()).change)
    sig = sig_for(draft, pool[0])
    tree = apply(
        tree,
        repo.add_signature(
            tree, NOW, REF, "root", **sig, expirations=EXP, keys=ring.signers()
        ).change,
    )
    with pytest.raises(repo.NothingToCommit) as exc:
        repo.add_signature(tree, NOW, REF, "root", **sig, expirations=EXP, keys=ring.signers())
    assert exc.value.progress.collected == 1


def test_signature_rejections(ring, pool):
    tree, _ = bootstrapped(ring, pool[:2], 2)
    new = make_root(2, pool[:3], 2, ring.ensure())
    draft = signed_doc(new, [])
    tree = apply(tree, repo.propose_root(tree, NOW, REF, draft, EXP, ring.signers()).change)

    def post(keyid: str, sig: str) -> None:
        repo.add_signature(tree, NOW, REF, "root", keyid, sig, EXP, ring.signers())

    outsider = sig_for(draft, pool[5])
    with pytest.raises(TufError, match="is not authorized for role root") as exc:
        post(**outsider)
    assert exc.value.message == "Signature Failed" and exc.value.http_status == 400
    good = sig_for(draft, pool[0])
    with pytest.raises(TufError, match="signature verification failed"):
        post(good["keyid"], sig_for(draft, pool[1])["sig"])
    with pytest.raises(TufError, match="invalid signature hex"):
        post(good["keyid"], "zz")
    with pytest.raises(TufError, match="No metadata found in signing process for role targets"):
        repo.add_signature(
            tree, NOW, REF, "targets", good["keyid"], good["sig"], EXP, ring.signers()
        )
    # A draft whose expiry passed cannot collect signatures.
    later = NOW + 400 * 86400
    with pytest.raises(TufError, match="metadata is expired"):
        repo.add_signature(
            tree, later, REF, "root", good["keyid"], good["sig"], EXP, ring.signers()
        )


def test_sign_and_rotate_before_bootstrap_are_404(ring, pool):
    with pytest.raises(TufError, match="Requires bootstrap in signing state") as exc:
        repo.add_signature(DictTree(), NOW, REF, "root", "ab", "cd", EXP, ring.signers())
    assert exc.value.http_status == 404 and exc.value.message == "No signing pending."
    with pytest.raises(TufError, match="Requires bootstrap finished") as exc:
        repo.propose_root(DictTree(), NOW, REF, {}, EXP, ring.signers())
    assert exc.value.http_status == 404 and exc.value.message == "Task not accepted."


def test_full_rotation_supersedes_stale_draft(ring, pool):
    tree, _ = bootstrapped(ring, pool[:1], 1)
    stale = make_root(2, pool[1:2], 1, ring.ensure())
    tree = apply(
        tree, repo.propose_root(tree, NOW, REF, signed_doc(stale, []), EXP, ring.signers()).change
    )
    assert tree.read(REF.pending_root) is not None
    full = make_root(2, pool[2:3], 1, ring.ensure())
    out = repo.propose_root(
        tree, NOW, REF, signed_doc(full, [pool[0], pool[2]]), EXP, ring.signers()
    )
    assert out.published and REF.pending_root in out.change.deletes
    tree = apply(tree, out.change)
    assert tree.read(REF.pending_root) is None
    with pytest.raises(TufError) as exc:
        repo.add_signature(
            tree,
            NOW,
            REF,
            "root",
            **sig_for(signed_doc(stale, []), pool[1]),
            expirations=EXP,
            keys=ring.signers(),
        )
    assert exc.value.http_status == 404


def test_second_proposal_overwrites_the_draft(ring, pool):
    tree, _ = bootstrapped(ring, pool[:1], 1)
    first = signed_doc(make_root(2, pool[1:2], 1, ring.ensure()), [])
    second = signed_doc(make_root(2, pool[2:3], 1, ring.ensure()), [])
    tree = apply(tree, repo.propose_root(tree, NOW, REF, first, EXP, ring.signers()).change)
    tree = apply(tree, repo.propose_root(tree, NOW, REF, second, EXP, ring.signers()).change)
    assert repo.pending_root(tree, REF) == second
    tree = apply(tree, repo.delete_draft(tree, REF, "root"))
    assert repo.pending_root(tree, REF) is None
    with pytest.raises(TufError, match="The root role is not in a signing process") as exc:
        repo.delete_draft(tree, REF, "root")
    assert exc.value.http_status == 404


# --- what python-tuf's client would refuse ---------------------------------------------------------
def _mutations() -> dict[str, Any]:
    def fractional(d):
        d["signed"]["expires"] = "2026-12-21T12:52:51.723305Z"

    def spec2(d):
        d["signed"]["spec_version"] = "2.0.0"

    def missing_role(d):
        del d["signed"]["roles"]["snapshot"]

    def not_consistent(d):
        d["signed"]["consistent_snapshot"] = False

    def keyid_mismatch(d):
        keys = d["signed"]["keys"]
        k = next(iter(keys))
        keys["00" * 32] = keys.pop(k)
        for role in d["signed"]["roles"].values():
            role["keyids"] = ["00" * 32 if x == k else x for x in role["keyids"]]

    def dup_sigs(d):
        d["signatures"] = d["signatures"] * 2

    def unreachable_threshold(d):
        d["signed"]["roles"]["root"]["threshold"] = 5

    def wrong_type(d):
        d["signed"]["_type"] = "targets"

    def string_version(d):
        d["signed"]["version"] = "2"

    return {
        f.__name__: f
        for f in (
            fractional,
            spec2,
            missing_role,
            not_consistent,
            keyid_mismatch,
            dup_sigs,
            unreachable_threshold,
            wrong_type,
            string_version,
        )
    }


@pytest.mark.parametrize("mutation", _mutations().values(), ids=_mutations().keys())
def test_unreadable_roots_are_rejected(ring, pool, mutation):
    tree, _ = bootstrapped(ring, pool[:1], 1)
    doc = signed_doc(make_root(2, pool[:1], 1, ring.ensure()), pool[:1])
    mutation(doc)
    with pytest.raises(TufError) as exc:
        repo.propose_root(tree, NOW, REF, doc, EXP, ring.signers())
    assert exc.value.http_status == 400
    assert exc.value.error == "Failed to load new root metadata"
    assert exc.value.details


def test_wrong_version_and_expired_root(ring, pool):
    tree, _ = bootstrapped(ring, pool[:1], 1)
    for v in (1, 3, 5):
        doc = signed_doc(make_root(v, pool[:1], 1, ring.ensure()), pool[:1])
        with pytest.raises(TufError, match=f"expected root version 2, got version {v}") as exc:
            repo.propose_root(tree, NOW, REF, doc, EXP, ring.signers())
        assert exc.value.message == "Metadata Update Failed"
    old = make_root(2, pool[:1], 1, ring.ensure(), days=1, now=NOW - 5 * 86400)
    with pytest.raises(TufError, match="expired") as exc:
        repo.propose_root(tree, NOW, REF, signed_doc(old, pool[:1]), EXP, ring.signers())
    assert exc.value.http_status == 400


def test_bad_signature_in_proposal_is_rejected(ring, pool):
    tree, _ = bootstrapped(ring, pool[:1], 1)
    doc = signed_doc(make_root(2, pool[:2], 1, ring.ensure()), pool[:1])
    doc["signatures"][0]["sig"] = sig_for(
        signed_doc(make_root(3, pool[:1], 1, ring.ensure()), []), pool[0]
    )["sig"]
    with pytest.raises(TufError, match="signature verification failed"):
        repo.propose_root(tree, NOW, REF, doc, EXP, ring.signers())


def test_unknown_fields_are_kept_byte_for_byte(ring, pool):
    """A signature over fields python-tuf does not know stays valid once published."""
    tree, _ = bootstrapped(ring, pool[:1], 1)
    signed = make_root(2, pool[1:2], 1, ring.ensure()).to_dict()
    signed["x-custom"] = {"note": "ünïcode", "n": [1, 2]}
    signed["roles"]["root"]["x-extra"] = True
    doc = signed_doc(signed, [pool[0], pool[1]])
    out = repo.propose_root(tree, NOW, REF, doc, EXP, ring.signers())
    assert out.published
    stored = json.loads(out.change.writes[REF.versioned("root", 2)])
    assert stored == doc
    md = Metadata[Root].from_bytes(out.change.writes[REF.versioned("root", 2)])
    md.signed.verify_delegate("root", md.signed_bytes, md.signatures)


# --- online roles ------------------------------------------------------------------------------------
def test_rotation_replacing_online_keys_resigns_everything(tmp_path: Path, pool):
    ring = OnlineKeyring(tmp_path)
    first = ring.ensure()
    tree, _ = bootstrapped(ring, pool[:1], 1)
    second = ring.rotate()
    assert {k.keyid for k in second.values()}.isdisjoint(k.keyid for k in first.values())
    assert ring.ensure() == second  # the new set is current
    new = make_root(2, pool[:1], 1, second)
    out = repo.propose_root(tree, NOW + 60, REF, signed_doc(new, pool[:1]), EXP, ring.signers())
    tree = apply(tree, out.change)
    assert sorted(out.change.writes) == sorted(
        [
            REF.versioned("root", 2),
            REF.versioned("targets", 2),
            REF.versioned("snapshot", 2),
            REF.timestamp,
        ]
    )
    assert_consistent(tree, new)


def test_rotation_keeping_online_keys_bumps_snapshot_and_timestamp_only(ring, pool):
    tree, _ = bootstrapped(ring, pool[:1], 1)
    new = make_root(2, pool[:1], 1, ring.ensure())
    out = repo.propose_root(tree, NOW, REF, signed_doc(new, pool[:1]), EXP, ring.signers())
    assert sorted(out.change.writes) == sorted(
        [REF.versioned("root", 2), REF.versioned("snapshot", 2), REF.timestamp]
    )
    ts = Metadata[Timestamp].from_bytes(out.change.writes[REF.timestamp])
    assert ts.signed.version == 2


def test_refresh_online_roles(ring, pool):
    tree, root = bootstrapped(ring, pool[:1], 1)
    change, updated = repo.refresh_online(tree, NOW + 3600, REF, ["timestamp"], EXP, ring.signers())
    assert updated == ["snapshot", "timestamp"]
    tree = apply(tree, change)
    assert_consistent(tree, root)
    change, updated = repo.refresh_online(tree, NOW + 7200, REF, ["targets"], EXP, ring.signers())
    assert updated == ["targets", "snapshot", "timestamp"]
    tree = apply(tree, change)
    assert_consistent(tree, root)
    assert Metadata.from_bytes(tree.read(REF.timestamp) or b"").signed.version == 3


def test_online_keys_json_shape(ring):
    out = keys_json(ring.ensure())
    assert list(out) == ["timestamp", "snapshot", "targets"]
    for k in out.values():
        assert k["keytype"] == "ed25519" and k["scheme"] == "ed25519"
        assert len(k["keyval"]["public"]) == 64 and len(k["keyid"]) == 64


def test_online_keys_never_enter_the_tree(ring, pool):
    tree, _ = bootstrapped(ring, pool[:1], 1)
    pems = [p.read_bytes() for p in (ring._keys_dir).iterdir()]
    for path in tree:
        data = tree.read(path) or b""
        assert b"PRIVATE KEY" not in data
        assert not any(pem in data for pem in pems)


# --- parser robustness ------------------------------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=200, deadline=None)
@given(
    signed=st.dictionaries(
        st.sampled_from(
            [
                "_type",
                "version",
                "spec_version",
                "expires",
                "keys",
                "roles",
                "consistent_snapshot",
                "x",
            ]
        ),
        json_values,
    ),
    sigs=json_values,
)
def test_parse_root_only_raises_format_error(signed, sigs):
    signed.setdefault("_type", "root")
    with contextlib.suppress(FormatError):
        parse_root({"signed": signed, "signatures": sigs})


@settings(max_examples=50, deadline=None)
@given(
    extra=st.dictionaries(
        st.text(min_size=1, max_size=5).map(lambda s: "x-" + s), json_values, max_size=3
    )
)
def test_parse_root_keeps_any_unknown_fields(extra):
    signed = copy.deepcopy(_BASE_SIGNED)
    signed.update(extra)
    parsed = parse_root({"signed": signed, "signatures": []})
    assert parsed.doc["signed"] == signed


_BASE_SIGNED = make_root(
    1, [key()], 1, {r: key().public_key for r in ("targets", "snapshot", "timestamp")}
).to_dict()


# --- one key under two keyids -------------------------------------------------------------------------
TWINS = ("upper", "extra", "pem")


@pytest.mark.parametrize("how", TWINS)
def test_bootstrap_refuses_one_key_under_two_keyids(ring, pool, how):
    root, twin = twin_root(1, pool[0], how, ring.ensure())
    doc = signed_by_twins(root, pool[0], twin)
    if how != "pem":  # python-tuf reads the raw key only as hex: the PEM twin never verifies
        md = Metadata[Root].from_dict(copy.deepcopy(doc))
        assert md.signed.get_root_verification_result(None, md.signed_bytes, md.signatures).verified
    with pytest.raises(TufError) as exc:
        repo.bootstrap(DictTree(), NOW, REF, doc, EXP, ring.signers())
    assert exc.value.http_status == 400 and exc.value.error == "Failed to load root metadata"
    assert exc.value.details is not None and "same public key" in exc.value.details
    assert twin.keyid in exc.value.details and pool[0].public_key.keyid in exc.value.details


@pytest.mark.parametrize("how", TWINS)
def test_rotation_refuses_one_key_under_two_keyids(ring, pool, how):
    tree, _ = bootstrapped(ring, pool[:1], 1)
    root, twin = twin_root(2, pool[0], how, ring.ensure())
    for doc in (signed_by_twins(root, pool[0], twin), signed_doc(root, [])):
        with pytest.raises(TufError) as exc:
            repo.propose_root(tree, NOW, REF, doc, EXP, ring.signers())
        assert exc.value.http_status == 400
        assert exc.value.error == "Failed to load new root metadata"
        assert exc.value.details is not None and "same public key" in exc.value.details
    assert tree.read(REF.versioned("root", 2)) is None and tree.read(REF.pending_root) is None


def test_a_stored_draft_listing_one_key_twice_collects_no_signature(ring, pool):
    """A draft in the tree from before the check: signing it is refused, never published."""
    tree, _ = bootstrapped(ring, pool[:1], 1)
    root, twin = twin_root(2, pool[0], "upper", ring.ensure())
    draft = signed_doc(root, [])
    files = tree.files()
    files[REF.pending_root] = json.dumps(draft).encode()
    tree = DictTree(files)
    for keyid in (pool[0].public_key.keyid, twin.keyid):
        sig = {"keyid": keyid, "sig": sig_for(draft, pool[0])["sig"]}
        with pytest.raises(TufError, match="same public key") as exc:
            repo.add_signature(tree, NOW, REF, "root", **sig, expirations=EXP, keys=ring.signers())
        assert exc.value.http_status == 400 and exc.value.message == "Signature Failed"


@pytest.mark.parametrize("how", TWINS)
def test_key_material_sees_through_spellings(pool, how):
    assert key_material(twin_key(pool[0], how)) == key_material(pool[0].public_key)
    assert key_material(pool[0].public_key) != key_material(pool[1].public_key)


def test_cli_builders_refuse_one_key_under_two_keyids(ring, pool):
    twin = twin_key(pool[0], "upper")
    with pytest.raises(FormatError, match="given twice"):
        build.new_root([pool[0].public_key, twin], 2, ring.ensure(), days=30, now=NOW)
    trusted = build.new_root([pool[0].public_key], 1, ring.ensure(), days=30, now=NOW)
    with pytest.raises(FormatError, match="same public key"):
        build.next_root(trusted, add=[twin], threshold=2, days=30, now=NOW)
