"""Acceptance audit of issue 6 (TUF root rotation): the rejections of the Must-show list that
tests/test_tuf_http.py does not drive over HTTP, each with its status and message, against a real
``asfaload serve`` process.

- Signatures only from new keys never publish, whatever is posted: a fully new-key-signed
  rotation in one request, then the same signatures again through the sign endpoint.
- Malformed roots python-tuf cannot use (spec_version 2, missing role, consistent_snapshot false)
  and a repeated version.
- Missing / expired token and a non-admin user on every write route.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
import requests

from asfaload.devtools.server import ServerProcess
from asfaload.tuf.accounts import Accounts
from tests.support.tuf import key, make_root, sig_for, signed_doc
from tests.support.tuf_server import Tuf, online_keys

NOW = int(time.time())
CHEAP: dict[str, Any] = {"opslimit": 1, "memlimit": 8192}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    data_dir = tmp_path_factory.mktemp("acc6") / "data"
    data_dir.mkdir()
    online = online_keys(data_dir)
    accounts = Accounts(data_dir / "private")
    accounts.add_user("alice", "alice-password", **CHEAP)
    accounts.add_user("carol", "carol-password", role="team", **CHEAP)
    server = ServerProcess(data_dir).start()
    try:
        tokens = {}
        for user in ("alice", "carol"):
            r = requests.post(
                server.url("/login"),
                json={"username": user, "password": f"{user}-password"},
                timeout=60,
            )
            assert r.status_code == 200, r.text
            tokens[user] = r.json()["token"]
        yield {
            "server": server,
            "online": online,
            "alice": Tuf(server, tokens["alice"], "alice"),
            "carol": Tuf(server, tokens["carol"], "carol"),
            "secret": accounts.secret(),
        }
    finally:
        server.stop()


def _bootstrapped(t: Tuf, app: str, online: dict[str, Any]) -> Any:
    a = key()
    r = t.bootstrap(app, signed_doc(make_root(1, [a], 1, online, now=NOW), [a]))
    assert r.status_code == 202, r.text
    return a


def _published(t: Tuf, app: str, name: str) -> bool:
    url = t.server.url(f"/v1/files/tuf/{t.admin}/{app}/{name}")
    return requests.get(url, timeout=30).status_code == 200


def _trusted_version(t: Tuf, app: str) -> int:
    r = t.get("/tuf/v1/metadata/root", appName=app)
    assert r.status_code == 200, r.text
    return int(r.json()["data"]["trusted_root"]["signed"]["version"])


def test_new_keys_only_never_publish_whatever_is_posted(env: dict[str, Any]) -> None:
    t: Tuf = env["alice"]
    app = "newkeys"
    old = _bootstrapped(t, app, env["online"])
    b, c = key(), key()
    v2 = make_root(2, [b, c], 2, env["online"], now=NOW)
    # Fully signed by the new root's keys in one request: the old threshold is unmet.
    r = t.rotate(app, signed_doc(v2, [b, c]))
    assert r.status_code == 200, r.text
    assert r.json()["data"]["published"] is False
    progress = r.json()["data"]["progress"]
    assert len(progress["old"]["signed"]) == 0 and len(progress["new"]["signed"]) == 2
    # Posting the same new-key signatures again through the sign endpoint changes nothing.
    draft = t.get("/tuf/v1/metadata/sign", appName=app).json()["data"]["metadata"]["root"]
    for signer in (b, c, b):
        r = t.sign(app, sig_for(draft, signer))
        assert r.status_code == 200, r.text
        assert r.json()["data"]["published"] is False
        assert r.json()["data"]["progress"]["collected"] == 2
    assert not _published(t, app, "2.root.json")
    assert _trusted_version(t, app) == 1
    # The old key's signature is what was missing: now it publishes.
    r = t.sign(app, sig_for(draft, old))
    assert r.status_code == 200 and r.json()["data"]["published"] is True, r.text
    assert _published(t, app, "2.root.json") and _trusted_version(t, app) == 2


def _spec2(d: dict[str, Any]) -> None:
    d["signed"]["spec_version"] = "2.0.0"


def _missing_role(d: dict[str, Any]) -> None:
    del d["signed"]["roles"]["snapshot"]


def _not_consistent(d: dict[str, Any]) -> None:
    d["signed"]["consistent_snapshot"] = False


def _fractional(d: dict[str, Any]) -> None:
    d["signed"]["expires"] = "2099-12-21T12:52:51.723305Z"


@pytest.mark.parametrize(
    "mutate",
    [_spec2, _missing_role, _not_consistent, _fractional],
    ids=["spec-version-2", "missing-role", "not-consistent-snapshot", "fractional-expires"],
)
def test_malformed_root_is_400(env: dict[str, Any], mutate: Any) -> None:
    t: Tuf = env["alice"]
    app = "malformed-" + mutate.__name__.strip("_").replace("_", "-")
    old = _bootstrapped(t, app, env["online"])
    doc = signed_doc(make_root(2, [old], 1, env["online"], now=NOW), [old])
    mutate(doc)
    r = t.rotate(app, doc)
    assert r.status_code == 400, r.text
    # FaynoSync's shape for this case: the error alone.
    assert r.json()["error"] == "Failed to load new root metadata"
    assert not _published(t, app, "2.root.json")


def test_same_version_again_is_400(env: dict[str, Any]) -> None:
    t: Tuf = env["alice"]
    app = "sameversion"
    old = _bootstrapped(t, app, env["online"])
    r = t.rotate(app, signed_doc(make_root(1, [old], 1, env["online"], now=NOW), [old]))
    assert r.status_code == 400, r.text
    assert r.json()["error"] == (
        "Failed to verify the trust: expected root version 2, got version 1"
    )


WRITES = [
    ("POST", "/tuf/v1/bootstrap"),
    ("POST", "/tuf/v1/metadata"),
    ("POST", "/tuf/v1/metadata/sign"),
    ("POST", "/tuf/v1/metadata/sign/delete"),
    ("POST", "/tuf/v1/metadata/online"),
    ("GET", "/tuf/v1/metadata/sign"),
    ("GET", "/tuf/v1/metadata/root"),
    ("GET", "/tuf/v1/bootstrap"),
    ("GET", "/tuf/v1/task"),
]


def _call(server: ServerProcess, method: str, path: str, headers: dict[str, str]) -> Any:
    r = requests.request(
        method,
        server.url(path),
        params={"appName": "newkeys", "task_id": "x"},
        json={"role": "root"} if method == "POST" else None,
        headers=headers,
        timeout=30,
    )
    return r.status_code, r.json()


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_token_and_role_refusals_on_every_route(
    env: dict[str, Any], method: str, path: str
) -> None:
    server: ServerProcess = env["server"]
    assert _call(server, method, path, {}) == (401, {"error": "missing authorization header"})
    expired = jwt.encode({"username": "alice", "exp": NOW - 10}, env["secret"], algorithm="HS256")
    assert _call(server, method, path, {"Authorization": f"Bearer {expired}"}) == (
        401,
        {"error": "token expired"},
    )
    carol: Tuf = env["carol"]
    assert _call(server, method, path, carol.headers) == (403, {"error": "Admin access required"})
