"""The ``asfaload admin`` / ``asfaload tuf`` helpers, through Click in-process."""

from __future__ import annotations

import contextlib
import json
import stat

from asfaload.cli.main import cli
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from securesystemslib.signer._utils import compute_default_keyid

from asfaload.tuf._api import Metadata, Root, Signature, SSlibKey
from asfaload.tuf.accounts import Accounts
from tests.support.tuf import key, make_root, signed_doc


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def test_online_keys_are_created_once_and_stay_private(tmp_path):
    first = run("tuf", "online-keys", "--data-dir", str(tmp_path), "--json")
    assert first.exit_code == 0, first.output
    again = run("tuf", "online-keys", "--data-dir", str(tmp_path), "--json")
    assert json.loads(first.output) == json.loads(again.output)
    keys = json.loads(first.output)
    for role in ("timestamp", "snapshot", "targets"):
        keyid = keys[role]["keyid"]
        pem = tmp_path / "private" / "tuf" / "online-keys" / keyid
        assert stat.S_IMODE(pem.stat().st_mode) == 0o600
        assert b"PRIVATE KEY" in pem.read_bytes()
    assert stat.S_IMODE((tmp_path / "private" / "tuf").stat().st_mode) == 0o700
    rotated = run("tuf", "online-keys", "--data-dir", str(tmp_path), "--json", "--rotate")
    assert json.loads(rotated.output)["timestamp"]["keyid"] != keys["timestamp"]["keyid"]
    text = run("tuf", "online-keys", "--data-dir", str(tmp_path))
    assert text.output.startswith("timestamp: ")


def test_add_user_then_duplicate_is_refused(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("long enough password\n")
    args = (
        "admin",
        "add-user",
        "--data-dir",
        str(tmp_path),
        "--username",
        "ann",
        "--password-file",
        str(pw),
    )
    ok = run(*args)
    assert ok.exit_code == 0 and "Added admin user ann" in ok.output
    dup = run(*args)
    assert dup.exit_code == 1 and "user already exists: ann" in dup.output
    accounts = Accounts(tmp_path / "private")
    user = accounts.check_password("ann", "long enough password")
    assert user.is_admin
    stored = json.loads((tmp_path / "private" / "tuf" / "users.json").read_text())
    assert stored["ann"]["hash"].startswith("$argon2id$")
    assert "long enough password" not in json.dumps(stored)
    bad = run(
        "admin",
        "add-user",
        "--data-dir",
        str(tmp_path),
        "--username",
        "../x",
        "--password-file",
        str(pw),
    )
    assert bad.exit_code == 1 and "Invalid username" in bad.output


def test_keygen_and_offline_sign_make_a_valid_root_signature(tmp_path):
    made = run("tuf", "keygen", "--out", str(tmp_path / "root.key"))
    assert made.exit_code == 0, made.output
    info = json.loads(made.output)
    keyid = info.pop("keyid")
    public = SSlibKey.from_dict(keyid, info)
    assert run("tuf", "keygen", "--out", str(tmp_path / "root.key")).exit_code == 1

    class Pub:  # make_root only needs .public_key
        public_key = public

    online = {r: key().public_key for r in ("targets", "snapshot", "timestamp")}
    root = make_root(1, [Pub()], 1, online)  # type: ignore[list-item]
    draft = signed_doc(root, [])
    (tmp_path / "draft.json").write_text(json.dumps({"data": {"metadata": {"root": draft}}}))
    signed = run(
        "tuf", "sign", "--key", str(tmp_path / "root.key"), "--root", str(tmp_path / "draft.json")
    )
    assert signed.exit_code == 0, signed.output
    body = json.loads(signed.output)
    assert body["role"] == "root" and body["signature"]["keyid"] == keyid
    md = Metadata[Root].from_dict(
        {"signed": draft["signed"], "signatures": [dict(body["signature"])]}
    )
    public.verify_signature(Signature.from_dict(dict(body["signature"])), md.signed_bytes)
    md.signed.verify_delegate("root", md.signed_bytes, md.signatures)


# --- parsers of the CLI helpers never fail with anything but our errors ----------------------------
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_key_like = st.fixed_dictionaries(
    {"keytype": _json_values, "scheme": _json_values, "keyval": _json_values},
    optional={"keyid": _json_values},
)


@settings(max_examples=150, deadline=None)
@given(st.one_of(_json_values, _key_like))
def test_key_dicts_parse_or_raise_key_format_error(doc: object) -> None:
    from asfaload.errors import KeyFormatError
    from asfaload.tuf.build import key_from_dict

    try:
        k = key_from_dict(doc, "test")
    except KeyFormatError:
        return
    assert isinstance(doc, dict) and k.keyid == compute_default_keyid(
        doc["keytype"], doc["scheme"], doc["keyval"]
    )


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(_json_values, st.fixed_dictionaries({"data": _json_values, "message": _json_values}))
)
def test_server_answers_parse_or_raise_format_error(doc: object) -> None:
    from asfaload.errors import FormatError
    from asfaload.tuf.client import SigningProgress, WriteResult

    for parse in (lambda d: WriteResult.from_body(d, "x"), SigningProgress.from_dict):
        with contextlib.suppress(FormatError):
            parse(doc)


def test_key_files_in_every_accepted_form_give_the_same_key(tmp_path) -> None:
    from cryptography.hazmat.primitives import serialization

    from asfaload.tuf.build import load_public_key

    info = json.loads(run("tuf", "keygen", "--out", str(tmp_path / "k.key")).output)
    private = serialization.load_pem_private_key((tmp_path / "k.key").read_bytes(), None)
    pem_pub = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "k.pem").write_bytes(pem_pub)
    (tmp_path / "k.json").write_text(json.dumps(info))
    without_id = {k: v for k, v in info.items() if k != "keyid"}
    (tmp_path / "k2.json").write_text(json.dumps(without_id))
    ids = {load_public_key(tmp_path / n).keyid for n in ("k.key", "k.pem", "k.json", "k2.json")}
    assert ids == {info["keyid"]}


@given(st.integers(min_value=400, max_value=599))
def test_error_class_for_status_inverts_http_status(status: int) -> None:
    """A refusal re-raised by a client is the kind of error the server raised: the class's own
    status is the answer's for every status our servers send, and the kind is right for others."""
    from asfaload.errors import (
        AsfaloadError,
        ForgeError,
        RuleViolation,
        StoreError,
        error_class_for_status,
    )

    cls = error_class_for_status(status)
    assert issubclass(cls, AsfaloadError)
    if status in (400, 401, 403, 404, 409, 500, 502):
        assert cls.http_status == status
    elif status == 504:
        assert cls is ForgeError
    elif status >= 500:
        assert cls is StoreError
    else:
        assert cls is RuleViolation


def test_unwritable_places_are_one_line_errors(tmp_path):
    """Files and dirs the offline commands cannot create: ``Error: …`` and exit 1, never a
    traceback; an existing key file is never overwritten."""
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    pw = tmp_path / "pw"
    pw.write_text("long enough password\n")
    key = tmp_path / "root.key"
    assert run("tuf", "keygen", "--out", str(key)).exit_code == 0
    before = key.read_bytes()
    again = run("tuf", "keygen", "--out", str(key))
    assert (again.exit_code, again.output.strip()) == (
        1,
        f"Error: Refusing to overwrite existing file {key}",
    )
    assert key.read_bytes() == before
    cases = [
        ("tuf", "keygen", "--out", str(blocker / "root.key")),
        ("tuf", "online-keys", "--data-dir", str(blocker / "data")),
        (
            "admin",
            "add-user",
            "--data-dir",
            str(blocker / "data"),
            "--username",
            "ann",
            "--password-file",
            str(pw),
        ),
    ]
    for args in cases:
        res = run(*args)
        assert res.exit_code == 1, (args, res.output)
        assert res.exception is None or isinstance(res.exception, SystemExit), args
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: Cannot create "), (args, lines)


def test_offline_sign_refuses_bad_inputs_in_one_line(tmp_path):
    """``tuf sign`` reads keys and drafts like the other root commands (one loader each)."""
    key_ = key  # the support helper: a fresh in-memory signer
    key_file = tmp_path / "root.key"
    assert run("tuf", "keygen", "--out", str(key_file)).exit_code == 0
    junk = tmp_path / "junk.key"
    junk.write_text("not a key\n")
    online = {r: key_().public_key for r in ("targets", "snapshot", "timestamp")}
    root = tmp_path / "root.json"
    root.write_text(json.dumps(signed_doc(make_root(1, [key_()], 1, online), [])))
    wrapped = tmp_path / "answer.json"
    wrapped.write_text('{"data": {"unexpected": 1}}')
    for args, start in (
        (("--key", str(junk), "--root", str(root)), f"Error: {junk}: not an unencrypted PEM"),
        (("--key", str(key_file), "--root", str(wrapped)), "Error: missing 'signed' object"),
    ):
        res = run("tuf", "sign", *args)
        assert res.exit_code == 1, res.output
        assert res.exception is None or isinstance(res.exception, SystemExit)
        lines = res.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(start), lines


def test_write_private_is_owner_only_atomic_and_can_refuse_to_overwrite(tmp_path):
    import pytest

    from asfaload.tuf.files import write_private

    path = tmp_path / "secret.json"
    write_private(path, b"one")
    write_private(path, b"two")
    assert path.read_bytes() == b"two"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(FileExistsError):
        write_private(path, b"three", replace=False)
    assert path.read_bytes() == b"two"
    write_private(tmp_path / "new.key", b"k", replace=False)
    assert stat.S_IMODE((tmp_path / "new.key").stat().st_mode) == 0o600
    # No temp file is left behind, whatever happened.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.key", "secret.json"]
