"""TUF rotation end to end: a real ``asfaload serve`` (gunicorn, 2 workers) on loopback, the real
``asfaload`` CLI for users and online keys, and python-tuf's real ``ngclient.Updater`` reading
``/v1/files/tuf/<admin>/<app>/``."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import jwt
import pytest
import requests
from tuf.api.exceptions import RepositoryError

from asfaload.devtools.server import ServerProcess
from asfaload.tuf._api import Metadata, Root, Timestamp
from asfaload.tuf.accounts import Accounts
from tests.support.tuf import key, make_root, sig_for, signed_by_twins, signed_doc, twin_root
from tests.support.tuf_server import CHEAP, NOW, Tuf, cli, online_keys


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("tuf-server") / "data"
    data_dir.mkdir()
    online = online_keys(data_dir)
    # The production Argon2id cost, through the real CLI, for the main admin.
    pw = data_dir.parent / "pw"
    pw.write_text("correct horse battery\n")
    assert "Added admin user alice" in cli(
        "admin",
        "add-user",
        "--data-dir",
        str(data_dir),
        "--username",
        "alice",
        "--password-file",
        str(pw),
    )
    accounts = Accounts(data_dir / "private")
    accounts.add_user("bob", "bob-password", **CHEAP)
    accounts.add_user("carol", "carol-password", role="team", **CHEAP)
    server = ServerProcess(data_dir, workers=2).start()
    try:
        tokens = {}
        for user, password in (
            ("alice", "correct horse battery"),
            ("bob", "bob-password"),
            ("carol", "carol-password"),
        ):
            r = requests.post(
                server.url("/login"), json={"username": user, "password": password}, timeout=60
            )
            assert r.status_code == 200, r.text
            tokens[user] = r.json()["token"]
        yield {
            "server": server,
            "data_dir": data_dir,
            "online": online,
            "alice": Tuf(server, tokens["alice"], "alice"),
            "bob": Tuf(server, tokens["bob"], "bob"),
            "carol": Tuf(server, tokens["carol"], "carol"),
            "secret": accounts.secret(),
        }
    finally:
        server.stop()


# --- auth ----------------------------------------------------------------------------------------
def test_login_and_token_errors(env):
    server: ServerProcess = env["server"]
    url = server.url("/tuf/v1/metadata/root?appName=x")

    def status(headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        r = requests.get(url, headers=headers, timeout=30)
        return r.status_code, r.json()

    # Token times are taken now, not at import: a loaded CI machine may reach this test minutes later.
    now = int(time.time())
    assert status({}) == (401, {"error": "missing authorization header"})
    assert status({"Authorization": "Token abc"}) == (401, {"error": "invalid token format"})
    assert status({"Authorization": "Bearer a.b.c"}) == (401, {"error": "malformed token"})
    expired = jwt.encode({"username": "alice", "exp": now - 10}, env["secret"], algorithm="HS256")
    assert status({"Authorization": f"Bearer {expired}"}) == (401, {"error": "token expired"})
    forged = jwt.encode({"username": "alice", "exp": now + 100}, b"x" * 32, algorithm="HS256")
    assert status({"Authorization": f"Bearer {forged}"}) == (
        401,
        {"error": "invalid token signature"},
    )
    nouser = jwt.encode({"exp": now + 100}, env["secret"], algorithm="HS256")
    assert status({"Authorization": f"Bearer {nouser}"}) == (
        401,
        {"error": "username not found in claims"},
    )
    assert status(env["carol"].headers) == (403, {"error": "Admin access required"})

    r = requests.post(
        server.url("/login"), json={"username": "alice", "password": "wrong"}, timeout=60
    )
    assert (r.status_code, r.json()) == (401, {"error": "invalid username or password"})
    r = requests.post(
        server.url("/login"), json={"username": "nobody", "password": "x"}, timeout=60
    )
    assert (r.status_code, r.json()) == (401, {"error": "invalid username or password"})
    r = requests.post(server.url("/login"), data=b"{", timeout=60)
    assert (r.status_code, r.json()) == (400, {"error": "invalid request body"})
    claims = jwt.decode(
        env["alice"].headers["Authorization"][7:], env["secret"], algorithms=["HS256"]
    )
    assert set(claims) == {"username", "exp"} and claims["username"] == "alice"
    # The login happened in the fixture, before `now`: its 24 h expiry ends at or before now + 24 h.
    assert now + 86400 - 900 < claims["exp"] <= now + 86400


# --- the main flow ---------------------------------------------------------------------------------
def test_bootstrap_rotations_and_python_tuf_client(env, tmp_path):
    t: Tuf = env["alice"]
    app = "demo"
    A, B, C, D, E = (key() for _ in range(5))
    r = t.get("/tuf/v1/bootstrap", appName=app)
    assert r.status_code == 200 and r.json()["data"]["bootstrap"] is False

    v1 = make_root(1, [A, B], 2, env["online"], now=NOW)
    r = t.bootstrap(app, signed_doc(v1, [A, B]))
    assert r.status_code == 202, r.text
    assert r.json()["message"] == "Bootstrap accepted and started in background"
    task = t.get("/tuf/v1/task", task_id=r.json()["data"]["task_id"]).json()
    assert task["data"]["state"] == "SUCCESS" and task["message"] == "Task state."
    r = t.get("/tuf/v1/bootstrap", appName=app)
    assert r.json()["data"]["bootstrap"] is True
    assert t.bootstrap(app, signed_doc(v1, [A, B])).status_code == 409

    root1 = t.file(app, "1.root.json")
    updater = t.updater(app, tmp_path / "client", root1)
    updater.refresh()
    assert updater._trusted_set.root.version == 1

    # v1 -> v2 through the draft flow.
    v2 = make_root(2, [B, C, D], 2, env["online"], now=NOW)
    draft = signed_doc(v2, [])
    r = t.rotate(app, draft)
    assert r.status_code == 200 and r.json()["message"] == "Metadata Update Processed"
    assert r.json()["data"]["published"] is False
    draft_task = r.json()["data"]["task_id"]
    assert t.get("/tuf/v1/task", task_id=draft_task).json()["data"]["state"] == "PENDING"
    r = t.get("/tuf/v1/metadata/sign", appName=app)
    body = r.json()
    assert body["message"] == "Metadata role(s) pending signing"
    assert body["data"]["metadata"]["root"] == draft
    assert body["data"]["metadata"]["trusted_root"] == json.loads(root1)

    expected = [(C, (0, 1)), (D, (0, 2)), (A, (1, 2))]
    for signer, (old, new) in expected:
        r = t.sign(app, sig_for(draft, signer))
        assert r.status_code == 200, r.text
        data = r.json()["data"]
        assert data["published"] is False
        assert len(data["progress"]["old"]["signed"]) == old
        assert len(data["progress"]["new"]["signed"]) == new
        assert "threshold not reached" in r.json()["message"]
        assert data["task_id"] == draft_task
    updater = t.updater(app, tmp_path / "client", None)  # one refresh per Updater
    updater.refresh()
    assert updater._trusted_set.root.version == 1  # nothing published yet
    r = t.sign(app, sig_for(draft, B))
    assert r.status_code == 200 and r.json()["message"] == "Metadata update finished"
    assert r.json()["data"]["published"] is True
    assert t.get("/tuf/v1/metadata/sign", appName=app).json() == {
        "data": None,
        "message": "No metadata pending signing available",
    }
    assert t.get("/tuf/v1/task", task_id=draft_task).json()["data"]["state"] == "SUCCESS"
    updater = t.updater(app, tmp_path / "client", None)  # one refresh per Updater
    updater.refresh()
    assert updater._trusted_set.root.version == 2

    # v2 -> v3 fully signed in one request, replacing the online keys too.
    new_online = online_keys(env["data_dir"], "--rotate")
    assert new_online["timestamp"].keyid != env["online"]["timestamp"].keyid
    v3 = make_root(3, [E], 1, new_online, now=NOW)
    r = t.rotate(app, signed_doc(v3, [B, C, E]))
    assert r.status_code == 200, r.text
    assert r.json()["data"]["published"] is True
    assert (
        t.get("/tuf/v1/metadata/root", appName=app).json()["data"]["trusted_root"]["signed"][
            "version"
        ]
        == 3
    )
    updater = t.updater(app, tmp_path / "client", None)  # one refresh per Updater
    updater.refresh()
    assert updater._trusted_set.root.version == 3
    ts = updater._trusted_set.timestamp
    assert ts.version == 3
    assert (
        new_online["timestamp"].keyid
        in Metadata[Timestamp].from_bytes(t.file(app, "timestamp.json")).signatures
    )

    # A fresh client pinned at v1 walks 2.root.json and 3.root.json.
    fresh = t.updater(app, tmp_path / "fresh", root1)
    fresh.refresh()
    assert fresh._trusted_set.root.version == 3
    assert fresh.get_targetinfo("nothing-here") is None

    # Force re-signing the online roles.
    r = t.post("/tuf/v1/metadata/online", {"roles": ["timestamp"]}, appName=app)
    assert r.status_code == 202 and r.json()["message"] == "Force online metadata update accepted."
    result = t.get("/tuf/v1/task", task_id=r.json()["data"]["task_id"]).json()["data"]["result"]
    assert result["details"]["updated_roles"] == ["snapshot", "timestamp"]
    assert t.post("/tuf/v1/metadata/online", {"roles": ["root"]}, appName=app).json() == {
        "error": "Root role cannot be updated via this endpoint"
    }
    updater = t.updater(app, tmp_path / "client", None)  # one refresh per Updater
    updater.refresh()
    assert updater._trusted_set.timestamp.version == 4

    # A read-only copy of the metadata where one file was tampered with is refused.
    names = ["1.root.json", "2.root.json", "3.root.json", "timestamp.json"]
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    for name in names:
        (copy_dir / name).write_bytes(t.file(app, name))
    snap_v = (
        Metadata[Timestamp].from_bytes(t.file(app, "timestamp.json")).signed.snapshot_meta.version
    )
    snap = json.loads(t.file(app, f"{snap_v}.snapshot.json"))
    snap["signed"]["expires"] = "2099-01-01T00:00:00Z"
    (copy_dir / f"{snap_v}.snapshot.json").write_text(json.dumps(snap))
    ts_doc = json.loads(t.file(app, "timestamp.json"))
    ts_doc["signed"]["version"] += 1
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(copy_dir))
    static = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=static.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{static.server_address[1]}/"
        tampered = t.updater(app, tmp_path / "tampered", root1, base=base)
        with pytest.raises(RepositoryError):
            tampered.refresh()  # snapshot bytes no longer match the timestamp's hash
        (copy_dir / "timestamp.json").write_text(json.dumps(ts_doc))
        tampered2 = t.updater(app, tmp_path / "tampered2", root1, base=base)
        with pytest.raises(RepositoryError):
            tampered2.refresh()  # timestamp signature no longer verifies
    finally:
        static.shutdown()


# --- rejections ------------------------------------------------------------------------------------
def test_rejections(env):
    t: Tuf = env["alice"]
    app = "rejects"
    A, B, X = key(), key(), key()
    online = env["online"]
    assert (
        t.bootstrap(app, signed_doc(make_root(1, [A], 1, online, now=NOW), [A])).status_code == 202
    )

    def rot(doc: Any) -> tuple[int, dict[str, Any]]:
        r = t.rotate(app, doc)
        return r.status_code, r.json()

    code, body = rot(signed_doc(make_root(3, [A], 1, online, now=NOW), [A]))
    assert code == 400 and body["message"] == "Metadata Update Failed"
    assert body["error"] == "Failed to verify the trust: expected root version 2, got version 3"
    code, body = rot(signed_doc(make_root(2, [A], 1, online, days=1, now=NOW - 3 * 86400), [A]))
    assert code == 400 and "expired" in body["error"]
    bad = signed_doc(make_root(2, [A], 1, online, now=NOW), [A])
    bad["signed"]["expires"] = "2030-12-21T12:52:51.723305Z"
    code, body = rot(bad)
    assert code == 400 and body["error"] == "Failed to load new root metadata"
    code, body = rot(None)
    assert (code, body) == (400, {"error": "Root metadata is required"})
    r = t.post("/tuf/v1/metadata", {"nope": 1}, appName=app)
    assert r.status_code == 400 and r.json()["error"].startswith("Invalid payload format")
    r = requests.post(
        t.server.url("/tuf/v1/metadata?appName=" + app), data=b"{", headers=t.headers, timeout=30
    )
    assert r.status_code == 400 and r.json()["error"].startswith("Invalid payload format")
    r = t.post("/tuf/v1/metadata", {"metadata": {}})
    assert (r.status_code, r.json()) == (400, {"error": "appName query parameter is required"})
    r = t.post("/tuf/v1/metadata", {"metadata": {}}, appName="bad_name")
    assert r.status_code == 400 and r.json()["error"].startswith('appName "bad_name" is invalid')

    # Unknown app (and another admin's app of the same name): 404 as FaynoSync.
    for who, name in ((t, "unknown"), (env["bob"], app)):
        r = who.rotate(name, signed_doc(make_root(2, [A], 1, online, now=NOW), [A]))
        assert r.status_code == 404
        assert r.json() == {
            "error": "Requires bootstrap finished. State: ",
            "message": "Task not accepted.",
        }
        r = who.get("/tuf/v1/metadata/sign", appName=name)
        assert (
            r.status_code == 404 and r.json()["message"] == "No metadata pending signing available"
        )
        r = who.sign(name, {"keyid": "ab", "sig": "cd"})
        assert r.status_code == 404 and r.json()["message"] == "No signing pending."

    # Signatures on a draft: outsider, bad signature, new keys only.
    draft = signed_doc(make_root(2, [B], 1, online, now=NOW), [])
    assert t.rotate(app, draft).status_code == 200
    r = t.sign(app, sig_for(draft, X))
    assert r.status_code == 400 and r.json()["message"] == "Signature Failed"
    assert "is not authorized for role root" in r.json()["error"]
    forged = {"keyid": A.public_key.keyid, "sig": sig_for(draft, B)["sig"]}
    r = t.sign(app, forged)
    assert r.status_code == 400 and "signature verification failed" in r.json()["error"]
    for _ in range(2):  # the new key alone never publishes, and is never counted twice
        r = t.sign(app, sig_for(draft, B))
        assert r.status_code == 200 and r.json()["data"]["published"] is False
        assert r.json()["data"]["progress"]["collected"] == 1
    assert (
        requests.get(t.server.url(f"/v1/files/tuf/alice/{app}/2.root.json"), timeout=30).status_code
        == 404
    )

    r = t.post("/tuf/v1/metadata/sign/delete", {"role": "root"}, appName=app)
    assert r.status_code == 202 and r.json()["message"] == "Metadata sign delete accepted."
    assert t.get("/tuf/v1/metadata/sign", appName=app).json()["data"] is None
    r = t.sign(app, sig_for(draft, A))
    assert r.status_code == 404 and r.json()["message"] == "No signatures pending for root"
    r = t.post("/tuf/v1/metadata/sign/delete", {"role": "root"}, appName=app)
    assert (
        r.status_code == 404 and r.json()["error"] == "The root role is not in a signing process."
    )
    r = t.get("/tuf/v1/task")
    assert (r.status_code, r.json()) == (400, {"error": "task_id query parameter is required"})
    assert t.get("/tuf/v1/task", task_id="nope").json()["data"] == {
        "task_id": "nope",
        "state": "PENDING",
    }


def test_roots_listing_one_key_under_two_keyids_are_refused(env):
    """One holder, two keyids (the same hex in upper case): never threshold 2, at any door."""
    t: Tuf = env["alice"]
    app = "twins"
    A = key()
    twins, twin = twin_root(1, A, "upper", env["online"], now=NOW)
    r = t.bootstrap(app, signed_by_twins(twins, A, twin))
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["error"] == "Failed to load root metadata"
    assert "same public key" in body["details"]
    assert A.public_key.keyid in body["details"] and twin.keyid in body["details"]
    assert t.get("/tuf/v1/bootstrap", appName=app).json()["data"]["bootstrap"] is False

    good = make_root(1, [A], 1, env["online"], now=NOW)
    assert t.bootstrap(app, signed_doc(good, [A])).status_code == 202
    v2, twin = twin_root(2, A, "extra", env["online"], now=NOW)
    for doc in (signed_by_twins(v2, A, twin), signed_doc(v2, [])):
        r = t.rotate(app, doc)
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "Failed to load new root metadata"
        assert "same public key" in r.json()["details"]
    assert t.get("/tuf/v1/metadata/sign", appName=app).json()["data"] is None
    r = requests.get(t.server.url(f"/v1/files/tuf/alice/{app}/2.root.json"), timeout=30)
    assert r.status_code == 404


# --- concurrency -------------------------------------------------------------------------------------
def test_parallel_signatures_of_a_3_of_5_rotation(env):
    t: Tuf = env["alice"]
    app = "parallel"
    A = key()
    five = [key() for _ in range(5)]
    assert (
        t.bootstrap(app, signed_doc(make_root(1, [A], 1, env["online"], now=NOW), [A])).status_code
        == 202
    )
    draft = signed_doc(make_root(2, five, 3, env["online"], now=NOW), [])
    assert t.rotate(app, draft).status_code == 200
    # Exactly the signatures needed (old A + three new): losing any one would block publication.
    sigs = [sig_for(draft, s) for s in (A, *five[:3])]
    with ThreadPoolExecutor(len(sigs)) as pool:
        responses = list(pool.map(lambda s: t.sign(app, s), sigs))
    assert [r.status_code for r in responses] == [200] * len(sigs)
    finished = [r for r in responses if r.json()["message"] == "Metadata update finished"]
    assert len(finished) == 1
    published = Metadata[Root].from_bytes(t.file(app, "2.root.json"))
    assert set(published.signatures) == {s["keyid"] for s in sigs}
    v1 = Metadata[Root].from_bytes(t.file(app, "1.root.json"))
    v1.signed.verify_delegate("root", published.signed_bytes, published.signatures)
    res = published.signed.get_verification_result(
        "root", published.signed_bytes, published.signatures
    )
    assert len(res.signed) == 3
    assert t.get("/tuf/v1/metadata/sign", appName=app).json()["data"] is None
