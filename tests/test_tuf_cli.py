"""The ``asfaload admin`` / ``asfaload tuf`` helpers, through Click in-process."""

from __future__ import annotations

import json
import stat

from asfaload.cli.main import cli
from click.testing import CliRunner

from asfaload.tuf._api import Metadata, Root, Signature, SSlibKey
from asfaload.tuf.accounts import Accounts
from tests.test_tuf_support import key, make_root, signed_doc


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
