"""The ``asfaload tuf`` commands against a real ``asfaload serve`` over loopback HTTP.

The CLI runs in-process through Click (same code as the console script, much faster than a
subprocess per step); one test runs the installed console script to check real exit codes.
python-tuf's real ``Updater`` checks what the commands published.
"""

from __future__ import annotations

import json
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from asfaload.cli.main import cli
from click.testing import CliRunner, Result
from tuf.ngclient.updater import Updater

from asfaload.devtools.server import ASFALOAD, ServerProcess, free_port
from asfaload.tuf._api import Metadata, Root
from asfaload.tuf.accounts import Accounts

PASSWORD = "a long admin password"
CHEAP: dict[str, Any] = {"opslimit": 1, "memlimit": 8192}
APP = "cli-app"


def run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, input=input)


def ok(*args: str, env: dict[str, str] | None = None) -> Result:
    result = run(*args, env=env)
    assert result.exit_code == 0, (args, result.output, result.stderr)
    return result


def fails(*args: str, expect: str, env: dict[str, str] | None = None) -> Result:
    result = run(*args, env=env)
    assert result.exit_code == 1, (args, result.output)
    assert expect in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr  # one clear line
    return result


class World:
    """A server, its online keys, an admin, a token file, and a work dir for key files."""

    def __init__(self, server: ServerProcess, work: Path) -> None:
        self.server = server
        self.url = server.base_url
        self.work = work
        self.token_file = work / "tokens.json"
        self.online = work / "online.json"

    def p(self, name: str) -> str:
        return str(self.work / name)

    def srv(self, *args: str) -> tuple[str, ...]:
        """``args`` plus the options every server command takes."""
        return (*args, "-u", self.url, "--token-file", str(self.token_file))

    def keygen(self, name: str) -> str:
        pub = Path(self.p(f"{name}.pub.json"))
        if pub.exists():  # parametrised tests share the module's work dir
            return str(json.loads(pub.read_text())["keyid"])
        out = ok("tuf", "keygen", "--out", self.p(f"{name}.key")).output
        Path(self.p(f"{name}.pub.json")).write_text(out)
        return str(json.loads(out)["keyid"])

    def updater(self, name: str, trusted: bytes, app: str = APP) -> Updater:
        base = self.work / "clients" / name
        (base / "meta").mkdir(parents=True, exist_ok=True)
        (base / "targets").mkdir(exist_ok=True)
        return Updater(
            metadata_dir=str(base / "meta"),
            metadata_base_url=f"{self.url}/v1/files/tuf/admin/{app}/",
            target_dir=str(base / "targets"),
            target_base_url=f"{self.url}/v1/files/",
            bootstrap=trusted,
        )

    def client_root(self, name: str) -> Root:
        return (
            Metadata[Root]
            .from_file(str(self.work / "clients" / name / "meta" / "root.json"))
            .signed
        )


@pytest.fixture(scope="module")
def tuf_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("tuf-cli")
    data_dir = base / "data"
    data_dir.mkdir()
    work = base / "work"
    work.mkdir()
    (work / "online.json").write_text(
        ok("tuf", "online-keys", "--data-dir", str(data_dir), "--json").output
    )
    (work / "pw").write_text(PASSWORD + "\n")
    # The production Argon2id cost through the CLI for the admin; a cheap one for the team user.
    ok(
        "admin",
        "add-user",
        "--data-dir",
        str(data_dir),
        "--username",
        "admin",
        "--password-file",
        str(work / "pw"),
    )
    Accounts(data_dir / "private").add_user("member", "member-password", role="team", **CHEAP)
    server = ServerProcess(data_dir).start()
    try:
        w = World(server, work)
        ok(*w.srv("tuf", "login", "--username", "admin", "--password-file", str(work / "pw")))
        yield w
    finally:
        server.stop()


# --- login and tokens -------------------------------------------------------------------------------
def test_login_stores_a_private_token_per_server(tuf_server: World, tmp_path: Path) -> None:
    tokens = tmp_path / "cfg" / "tokens.json"
    out = ok(
        "tuf",
        "login",
        "-u",
        tuf_server.url,
        "--username",
        "admin",
        "--token-file",
        str(tokens),
        env={"ASFALOAD_TUF_LOGIN_PASSWORD": PASSWORD},
    ).output
    assert f"Logged in to {tuf_server.url} as admin" in out
    assert stat.S_IMODE(tokens.stat().st_mode) == 0o600
    entry = json.loads(tokens.read_text())[tuf_server.url]
    claims = jwt.decode(entry["token"], options={"verify_signature": False})
    assert entry["username"] == claims["username"] == "admin"
    # The default location honours XDG_CONFIG_HOME; --print-token prints instead of storing.
    printed = ok(
        "tuf",
        "login",
        "-u",
        tuf_server.url,
        "--username",
        "admin",
        "--print-token",
        env={"ASFALOAD_TUF_LOGIN_PASSWORD": PASSWORD, "XDG_CONFIG_HOME": str(tmp_path / "xdg")},
    ).output.strip()
    assert jwt.decode(printed, options={"verify_signature": False})["username"] == "admin"
    assert not (tmp_path / "xdg").exists()
    ok(
        "tuf",
        "login",
        "-u",
        tuf_server.url,
        "--username",
        "admin",
        env={"ASFALOAD_TUF_LOGIN_PASSWORD": PASSWORD, "XDG_CONFIG_HOME": str(tmp_path / "xdg")},
    )
    assert tuf_server.url in json.loads(
        (tmp_path / "xdg" / "asfaload" / "tuf-tokens.json").read_text()
    )


def test_login_and_token_errors(tuf_server: World, tmp_path: Path) -> None:
    fails(
        "tuf",
        "login",
        "-u",
        tuf_server.url,
        "--username",
        "admin",
        "-p",
        "wrong password",
        "--token-file",
        str(tmp_path / "t.json"),
        expect="invalid username or password",
    )
    assert not (tmp_path / "t.json").exists()
    fails(
        "tuf",
        "pending",
        "--app",
        APP,
        "-u",
        tuf_server.url,
        "--token-file",
        str(tmp_path / "none.json"),
        expect="run `asfaload tuf login` first",
    )
    # ASFALOAD_TUF_TOKEN is used when no token file is named; the server judges it.
    fails(
        "tuf",
        "pending",
        "--app",
        APP,
        "-u",
        tuf_server.url,
        env={"ASFALOAD_TUF_TOKEN": "not-a-jwt", "XDG_CONFIG_HOME": str(tmp_path)},
        expect="malformed token",
    )
    member = run(
        "tuf",
        "login",
        "-u",
        tuf_server.url,
        "--username",
        "member",
        "-p",
        "member-password",
        "--print-token",
    )
    assert member.exit_code == 0
    fails(
        "tuf",
        "task",
        "some-id",
        "-u",
        tuf_server.url,
        env={"ASFALOAD_TUF_TOKEN": member.output.strip(), "XDG_CONFIG_HOME": str(tmp_path)},
        expect="Admin access required",
    )
    unreachable = f"http://127.0.0.1:{free_port()}"
    fails(
        "tuf",
        "login",
        "-u",
        unreachable,
        "--username",
        "admin",
        "-p",
        PASSWORD,
        expect=f"Cannot reach {unreachable}",
    )
    as_json = run(*tuf_server.srv("tuf", "pending", "--app", "no_underscores", "--json"))
    assert as_json.exit_code == 1
    assert "appName" in json.loads(as_json.stderr)["error"]


# --- root payloads ----------------------------------------------------------------------------------
def test_root_new_builds_a_root_python_tuf_accepts(tuf_server: World) -> None:
    a, b = tuf_server.keygen("new-a"), tuf_server.keygen("new-b")
    out = ok(
        "tuf",
        "root",
        "new",
        "--root-key",
        tuf_server.p("new-a.pub.json"),
        "--root-key",
        tuf_server.p("new-b.key"),  # a private key file works too: only its public half is used
        "--threshold",
        "2",
        "--online-keys",
        str(tuf_server.online),
        "--expires",
        "30",
        "--sign",
        tuf_server.p("new-a.key"),
        "--sign",
        tuf_server.p("new-b.key"),
    ).output
    md = Metadata[Root].from_bytes(out.encode())
    root = md.signed
    online = json.loads(tuf_server.online.read_text())
    assert root.version == 1 and root.consistent_snapshot is True
    assert set(root.roles["root"].keyids) == {a, b} and root.roles["root"].threshold == 2
    for role in ("timestamp", "snapshot", "targets"):
        assert root.roles[role].keyids == [online[role]["keyid"]]
    assert set(md.signatures) == {a, b}
    root.verify_delegate("root", md.signed_bytes, md.signatures)
    assert "." not in json.loads(out)["signed"]["expires"]  # whole seconds, as python-tuf needs


@pytest.mark.parametrize(
    ("extra", "expect"),
    [
        (("--threshold", "2"), "root threshold 2 is above the 1 root key(s)"),
        (("--threshold", "0"), "root threshold must be at least 1"),
        (("--expires", "400"), "root expiry must be 1..365 days"),
    ],
)
def test_root_new_refuses_impossible_roots(
    tuf_server: World, extra: tuple[str, ...], expect: str
) -> None:
    tuf_server.keygen("bad-a")
    fails(
        "tuf",
        "root",
        "new",
        "--root-key",
        tuf_server.p("bad-a.pub.json"),
        "--online-keys",
        str(tuf_server.online),
        *extra,
        expect=expect,
    )


def test_root_new_refuses_bad_key_files(tuf_server: World) -> None:
    tuf_server.keygen("kf")
    bad = tuf_server.work / "bad.pub.json"
    doc = json.loads(Path(tuf_server.p("kf.pub.json")).read_text())
    doc["keyid"] = "00" * 32
    bad.write_text(json.dumps(doc))
    common = ("tuf", "root", "new", "--online-keys", str(tuf_server.online), "--root-key")
    fails(*common, str(bad), expect="does not match its key")
    fails(*common, str(tuf_server.online), expect="not a TUF key")
    fails(*common, tuf_server.p("kf.pub.json"), "--sign", str(bad), expect="not an unencrypted PEM")


# --- the whole flow ---------------------------------------------------------------------------------
def test_bootstrap_draft_rotation_and_full_rotation(tuf_server: World) -> None:
    old = tuf_server.keygen("old")
    new = tuf_server.keygen("new")
    stranger = tuf_server.keygen("stranger")
    v1 = tuf_server.work / "v1.json"
    ok(
        "tuf",
        "root",
        "new",
        "--root-key",
        tuf_server.p("old.pub.json"),
        "--online-keys",
        str(tuf_server.online),
        "--out",
        str(v1),
    )
    assert json.loads(v1.read_text())["signatures"] == []
    fails(
        *tuf_server.srv("tuf", "bootstrap", "--app", APP, "--root", str(v1)),
        expect="root metadata is not signed by its own root threshold",
    )
    boot = ok(
        *tuf_server.srv(
            "tuf", "bootstrap", "--app", APP, "--root", str(v1), "--sign", tuf_server.p("old.key")
        )
    ).output
    assert f"Bootstrapped {APP}: root v1" in boot
    assert f"{tuf_server.url}/v1/files/tuf/admin/{APP}/" in boot
    fails(
        *tuf_server.srv(
            "tuf", "bootstrap", "--app", APP, "--root", str(v1), "--sign", tuf_server.p("old.key")
        ),
        expect="Bootstrap already completed for this admin and app",
    )
    status = json.loads(
        ok(*tuf_server.srv("tuf", "bootstrap", "--app", APP, "--status", "--json")).output
    )
    assert status["data"]["bootstrap"] is True
    raw_v1 = requests.get(
        f"{tuf_server.url}/v1/files/tuf/admin/{APP}/1.root.json", timeout=30
    ).content
    client = tuf_server.updater("walker", raw_v1)
    client.refresh()
    assert tuf_server.client_root("walker").version == 1

    # v2: add the new key, threshold 2, from the server's trusted root; proposed unsigned.
    v2 = tuf_server.work / "v2.json"
    ok(
        *tuf_server.srv(
            "tuf",
            "root",
            "rotate",
            "--app",
            APP,
            "--add-key",
            tuf_server.p("new.pub.json"),
            "--threshold",
            "2",
            "--out",
            str(v2),
        )
    )
    proposed = ok(*tuf_server.srv("tuf", "rotate", "--app", APP, "--root", str(v2))).output
    assert "Root v2 is pending signatures" in proposed
    draft = tuf_server.work / "draft.json"
    shown = ok(*tuf_server.srv("tuf", "pending", "--app", APP, "--out", str(draft))).output
    assert "Root v2 pending signatures (trusted root v1)" in shown
    assert f"missing: {new}" in shown and f"missing: {old}" in shown
    assert json.loads(draft.read_text())["signed"]["version"] == 2

    # A key in neither root is refused before anything is posted.
    fails(
        *tuf_server.srv("tuf", "sign-pending", "--app", APP, "--key", tuf_server.p("stranger.key")),
        expect=f"key {stranger} is not a root key",
    )
    # The new key alone: accepted (200 with progress), not published: the old threshold is unmet.
    partial = json.loads(
        ok(
            *tuf_server.srv(
                "tuf", "sign-pending", "--app", APP, "--key", tuf_server.p("new.key"), "--json"
            )
        ).output
    )
    assert partial["data"]["published"] is False
    assert partial["data"]["progress"]["old"]["remaining"] == 1
    assert partial["data"]["progress"]["new"]["signed"] == [new]
    pending_json = json.loads(ok(*tuf_server.srv("tuf", "pending", "--app", APP, "--json")).output)
    assert pending_json["data"]["metadata"]["trusted_root"]["signed"]["version"] == 1
    assert [s["keyid"] for s in pending_json["data"]["metadata"]["root"]["signatures"]] == [new]

    # A corrupted offline signature is refused by the server with its reason.
    body = json.loads(
        ok("tuf", "sign", "--key", tuf_server.p("old.key"), "--root", str(draft)).output
    )
    good_sig = body["signature"]["sig"]
    body["signature"]["sig"] = ("0" if good_sig[0] != "0" else "1") + good_sig[1:]
    (tuf_server.work / "bad.sig.json").write_text(json.dumps(body))
    fails(
        *tuf_server.srv(
            "tuf",
            "sign-pending",
            "--app",
            APP,
            "--signature",
            str(tuf_server.work / "bad.sig.json"),
        ),
        expect="Signature Failed",
    )
    # The old key signs offline; posting that signature publishes v2.
    body["signature"]["sig"] = good_sig
    (tuf_server.work / "old.sig.json").write_text(json.dumps(body))
    done = ok(
        *tuf_server.srv(
            "tuf",
            "sign-pending",
            "--app",
            APP,
            "--signature",
            str(tuf_server.work / "old.sig.json"),
        )
    ).output
    assert f"Signature from {old} accepted" in done and "Root v2 published" in done
    task_id = done.split("(task ")[1].split(")")[0]
    task = ok(*tuf_server.srv("tuf", "task", task_id)).output
    assert task.strip() == f"Task {task_id}: SUCCESS - Metadata update finished"
    assert ok(*tuf_server.srv("tuf", "pending", "--app", APP)).output.strip() == (
        "No metadata pending signing available"
    )
    fails(
        *tuf_server.srv("tuf", "sign-pending", "--app", APP, "--key", tuf_server.p("old.key")),
        expect="No metadata pending signing available",
    )
    tuf_server.updater("walker", raw_v1).refresh()
    root = tuf_server.client_root("walker")
    assert root.version == 2 and set(root.roles["root"].keyids) == {old, new}

    # Proposing v2 again is the wrong version now.
    fails(
        *tuf_server.srv("tuf", "rotate", "--app", APP, "--root", str(v2)),
        expect="expected root version 3",
    )

    # v3: drop the old key (threshold 1), fully signed (old 2-of-2 AND new 1-of-1) in one request.
    v3 = tuf_server.work / "v3.json"
    ok(
        *tuf_server.srv(
            "tuf",
            "root",
            "rotate",
            "--app",
            APP,
            "--remove-key",
            old,
            "--threshold",
            "1",
            "--out",
            str(v3),
        )
    )
    published = ok(
        *tuf_server.srv(
            "tuf",
            "rotate",
            "--app",
            APP,
            "--root",
            str(v3),
            "--sign",
            tuf_server.p("old.key"),
            "--sign",
            tuf_server.p("new.key"),
        )
    ).output
    assert "Root v3 published" in published
    tuf_server.updater("walker", raw_v1).refresh()
    root = tuf_server.client_root("walker")
    assert root.version == 3 and root.roles["root"].keyids == [new]
    # A fresh client pinned at v1 walks v2 then v3.
    tuf_server.updater("fresh", raw_v1).refresh()
    assert tuf_server.client_root("fresh").version == 3


def test_root_rotate_offline_from_file_and_refusals(tuf_server: World) -> None:
    a = tuf_server.keygen("rot-a")
    tuf_server.keygen("rot-b")
    v1 = tuf_server.work / "rot-v1.json"
    ok(
        "tuf",
        "root",
        "new",
        "--root-key",
        tuf_server.p("rot-a.pub.json"),
        "--online-keys",
        str(tuf_server.online),
        "--sign",
        tuf_server.p("rot-a.key"),
        "--out",
        str(v1),
    )
    # A saved GET /tuf/v1/metadata/root answer works as --from as well as a bare root.
    wrapped = tuf_server.work / "answer.json"
    wrapped.write_text(json.dumps({"data": {"trusted_root": json.loads(v1.read_text())}}))
    fresh_online = tuf_server.work / "online2.json"
    fresh_online.write_text(
        json.dumps(
            {
                role: json.loads(
                    ok("tuf", "keygen", "--out", tuf_server.p(f"online2-{role}.key")).output
                )
                for role in ("timestamp", "snapshot", "targets")
            }
        )
    )
    out = ok(
        "tuf",
        "root",
        "rotate",
        "--from",
        str(wrapped),
        "--add-key",
        tuf_server.p("rot-b.pub.json"),
        "--remove-key",
        tuf_server.p("rot-a.pub.json"),
        "--online-keys",
        str(fresh_online),
        "--expires",
        "10",
    ).output
    root = Metadata[Root].from_bytes(out.encode()).signed
    assert root.version == 2 and a not in root.keys
    assert root.roles["timestamp"].keyids == [
        json.loads(fresh_online.read_text())["timestamp"]["keyid"]
    ]
    common = ("tuf", "root", "rotate", "--from", str(v1))
    fails(*common, "--remove-key", "ab" * 32, expect="is not a root key of version 1")
    fails(*common, "--add-key", tuf_server.p("rot-a.pub.json"), expect="is already a root key")
    fails(*common, "--remove-key", a, expect="the new root would have no root keys")
    fails(*common, "--threshold", "3", expect="root threshold 3 is above the 1 root key(s)")
    fails("tuf", "root", "rotate", expect="give exactly one of --from FILE and --app APP")


def test_server_refusals_exit_non_zero(tuf_server: World) -> None:
    fails(
        *tuf_server.srv("tuf", "pending", "--app", "never-bootstrapped"),
        expect="Requires bootstrap",
    )
    fails(
        *tuf_server.srv(
            "tuf", "rotate", "--app", "never-bootstrapped", "--root", str(tuf_server.online)
        ),
        expect="missing 'signed' object",
    )
    # Unknown task ids read PENDING, as FaynoSync answers.
    assert "Task nope: PENDING" in ok(*tuf_server.srv("tuf", "task", "nope")).output


def test_console_script_exit_codes(tuf_server: World) -> None:
    done = subprocess.run(
        [ASFALOAD, *tuf_server.srv("tuf", "pending", "--app", "never-bootstrapped")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("Error: ") and len(done.stderr.strip().splitlines()) == 1
    usage = subprocess.run(
        [ASFALOAD, "tuf", "pending"], capture_output=True, text=True, timeout=120
    )
    assert usage.returncode == 2 and "--app" in usage.stderr


# --- the typed client, for the endpoints the CLI does not wrap ---------------------------------------
def test_typed_client_endpoints_and_error_classes(tuf_server: World) -> None:
    import time

    from asfaload.errors import AuthenticationError, NotFoundError, RuleViolation
    from asfaload.tuf import build
    from asfaload.tuf.client import TufClient
    from asfaload.tuf.documents import parse_root

    app = "client-app"
    client = TufClient(tuf_server.url)
    token = client.login("admin", PASSWORD)
    assert client.token == token
    tuf_server.keygen("api")
    signer = build.load_signer(tuf_server.p("api.key"))
    now = int(time.time())
    v1 = build.root_document(
        build.new_root(
            [signer.public_key], 1, build.load_online_keys(tuf_server.online), days=30, now=now
        ),
        [signer],
    )
    assert client.bootstrap_status(app).bootstrapped is False
    boot = client.bootstrap(app, v1)
    assert client.task(boot.task_id).state == "SUCCESS"
    assert client.bootstrap_status(app).bootstrapped is True
    trusted = client.trusted_root(app)
    assert trusted is not None and trusted["signed"]["version"] == 1

    online = client.refresh_online(app, ["timestamp"])
    task = client.task(online.task_id)
    updated = task.result["details"]["updated_roles"]
    assert task.state == "SUCCESS" and "timestamp" in updated and "targets" not in updated

    v2 = build.root_document(build.next_root(parse_root(trusted).root, days=30, now=now))
    draft = client.rotate(app, v2)
    assert draft.published is False and draft.progress is not None
    assert draft.progress.old.missing == (signer.public_key.keyid,)
    found = client.pending(app)
    assert found is not None and found.version == 2 and found.progress is not None
    client.delete_pending(app)
    assert client.pending(app) is None
    assert client.task(draft.task_id).state == "REVOKED"

    with pytest.raises(NotFoundError) as not_found:
        client.pending("unknown-app")
    assert not_found.value.http_status == 404
    with pytest.raises(RuleViolation, match="expected root version 2"):
        client.rotate(
            app,
            build.root_document(
                build.new_root(
                    [signer.public_key],
                    1,
                    build.load_online_keys(tuf_server.online),
                    days=30,
                    now=now,
                    version=5,
                )
            ),
        )
    with pytest.raises(AuthenticationError, match="token expired"):
        secret = Accounts(tuf_server.server.data_dir / "private").secret()
        expired = jwt.encode({"username": "admin", "exp": now - 10}, secret, algorithm="HS256")
        TufClient(tuf_server.url, expired).task("x")
