"""A TUF repository does not expire unattended: a real ``asfaload serve`` (2 workers) re-signs its
online metadata on its own, and python-tuf's real ``Updater`` refreshes after the original
expiry has passed.

Expirations are whole days, so time is moved instead of waited for: the server and the Updater
run under libfaketime (Debian's ``faketime``, installed by ``make deps``), which shifts the
clock of a process and of every process it starts. The control is the same data at the same
clocks with the scheduler turned off: there the Updater refuses the expired timestamp.
"""

from __future__ import annotations

import calendar
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests

from asfaload.devtools.server import ASFALOAD, ServerProcess
from asfaload.replication.replay import verify_repository
from asfaload.tuf.accounts import Accounts
from asfaload.tuf.documents import utc
from tests.support.tuf import key, make_root, signed_doc
from tests.support.tuf_server import CHEAP, Tuf, online_keys

APP = "fresh-app"
H = 3600

# Run in a subprocess at a shifted clock: one python-tuf client refresh, reported as JSON.
UPDATER = r"""
import json, sys
from pathlib import Path
from tuf.ngclient.updater import Updater

meta, base, root = sys.argv[1:4]
Path(meta).mkdir(parents=True, exist_ok=True)
try:
    updater = Updater(
        metadata_dir=meta,
        metadata_base_url=base,
        target_dir=meta,
        target_base_url=base,
        bootstrap=Path(root).read_bytes(),
    )
    updater.refresh()
    out = {"ok": True, "timestamp": updater._trusted_set.timestamp.version}
except Exception as exc:
    out = {"ok": False, "error": type(exc).__name__, "message": str(exc)}
print(json.dumps(out))
"""


def faketime_env(offset: str) -> dict[str, str]:
    """The environment ``faketime -f OFFSET`` gives a program (the library it preloads, as
    this machine's faketime names it): set on a server, it reaches its workers and writer."""
    done = subprocess.run(
        ["faketime", "-f", "+0", "sh", "-c", 'printf %s "$LD_PRELOAD"'],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "faketime" in done.stdout, done.stdout
    return {"LD_PRELOAD": done.stdout, "FAKETIME": offset}


def updater_at(offset: str, meta: Path, base: str, root: Path) -> dict[str, Any]:
    env = {**os.environ, **faketime_env(offset)}
    done = subprocess.run(
        [sys.executable, "-c", UPDATER, str(meta), base, str(root)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    return out


def login(server: ServerProcess) -> Tuf:
    r = requests.post(
        server.url("/login"), json={"username": "alice", "password": "alice-pw"}, timeout=60
    )
    assert r.status_code == 200, r.text
    return Tuf(server, r.json()["token"], "alice")


def tuf_status(server: ServerProcess, token: str, *extra: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASFALOAD_")}
    env["ASFALOAD_TUF_TOKEN"] = token
    done = subprocess.run(
        [ASFALOAD, "tuf", "status", "--app", APP, "-u", server.base_url, *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def tuf_seconds(text: str) -> int:
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))


def timestamp_version(t: Tuf) -> int:
    version: int = json.loads(t.file(APP, "timestamp.json"))["signed"]["version"]
    return version


def test_server_re_signs_before_expiry_and_a_client_past_it_still_refreshes(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    online = online_keys(data)
    Accounts(data / "private").add_user("alice", "alice-pw", **CHEAP)

    # Bootstrap at the real clock: timestamp 1 day (Tuf.bootstrap's settings).
    server = ServerProcess(data, workers=2, log_path=tmp_path / "server-1.log").start()
    try:
        t = login(server)
        signer = key()
        root = make_root(1, [signer], 1, online, now=int(time.time()))
        r = t.bootstrap(APP, signed_doc(root, [signer]))
        assert r.status_code == 202, r.text
        root_file = tmp_path / "1.root.json"
        root_file.write_bytes(t.file(APP, "1.root.json"))

        r = t.get("/tuf/v1/metadata/expiry", appName=APP)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["data"]["refresh"] == {"enabled": True, "margin": 6 * H, "interval": 300}
        roles = {row["role"]: row for row in body["data"]["roles"]}
        assert list(roles) == ["root", "targets", "snapshot", "timestamp"]
        expires = tuf_seconds(roles["timestamp"]["expires"])
        assert roles["timestamp"]["version"] == 1 and not roles["timestamp"]["expired"]
        assert tuf_seconds(roles["timestamp"]["refresh_at"]) == expires - 6 * H
        assert roles["snapshot"]["refresh_at"] == roles["timestamp"]["refresh_at"]
        assert roles["root"]["refresh_at"] is None and roles["root"]["online"] is False
        assert t.get("/tuf/v1/metadata/expiry", appName="nope").status_code == 404

        token = t.headers["Authorization"][len("Bearer ") :]
        assert json.loads(tuf_status(server, token, "--json")) == body
        text = tuf_status(server, token).splitlines()
        assert text[0] == (
            f"{APP}: the server re-signs online metadata 6 h before it expires (or at half its"
            " lifetime if sooner), looking at least every 5 min"
        )
        assert text[1].split() == [
            "root",
            "v1",
            "expires",
            roles["root"]["expires"],
            "offline:",
            "publish",
            "a",
            "new",
            "root",
            "before",
            "then",
        ]
        assert text[4].split() == [
            "timestamp",
            "v1",
            "expires",
            roles["timestamp"]["expires"],
            "re-signed",
            "at",
            roles["timestamp"]["refresh_at"],
        ]
    finally:
        server.stop()
    assert expires > time.time() + 23 * H  # the shifts below are relative to this clock

    # Control: the same data, the server already past the expiry, with the scheduler off.
    control_data = tmp_path / "control"
    shutil.copytree(data, control_data, symlinks=True)
    control = ServerProcess(
        control_data,
        env={**faketime_env("+25h"), "ASFALOAD_TUF_REFRESH_INTERVAL": "0"},
        log_path=tmp_path / "control.log",
    ).start()
    try:
        ct = login(control)
        assert timestamp_version(ct) == 1
        base = control.url(f"/v1/files/tuf/alice/{APP}/")
        refused = updater_at("+25h", tmp_path / "control-client", base, root_file)
        assert refused["ok"] is False, refused
        assert refused["error"] == "ExpiredMetadataError", refused
        r = ct.get("/tuf/v1/metadata/expiry", appName=APP)
        assert r.json()["data"]["refresh"]["enabled"] is False
        assert {row["refresh_at"] for row in r.json()["data"]["roles"]} == {None}
        assert [row["expired"] for row in r.json()["data"]["roles"]] == [
            False,
            False,
            False,
            True,
        ]
        text = tuf_status(control, ct.headers["Authorization"][len("Bearer ") :]).splitlines()
        assert text[0] == f"{APP}: this server does not re-sign online metadata"
        assert text[4].split()[:2] == ["timestamp", "v1"]
        assert text[4].split()[4:] == ["EXPIRED", "not", "re-signed", "by", "this", "server"]
        assert text[3].split()[4:] == ["not", "re-signed", "by", "this", "server"]
    finally:
        control.stop()

    # The server restarted 20 h later, 4 h before the timestamp expires (within the 6 h
    # margin), re-signs on its own.
    shifted = ServerProcess(
        data, env=faketime_env("+20h"), workers=2, log_path=tmp_path / "server-2.log"
    ).start()
    try:
        st = login(shifted)
        deadline = time.monotonic() + 120
        while timestamp_version(st) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert timestamp_version(st) == 2, shifted.log()[-4000:]
        roles = {
            row["role"]: row
            for row in st.get("/tuf/v1/metadata/expiry", appName=APP).json()["data"]["roles"]
        }
        assert roles["timestamp"]["version"] == 2 and roles["snapshot"]["version"] == 2
        assert roles["targets"]["version"] == 1  # not due for 90 days
        # Signed at the server's shifted clock: a day after 20 h from now.
        renewed = tuf_seconds(roles["timestamp"]["expires"])
        assert renewed >= expires + 19 * H, (utc(expires), utc(renewed))

        # A client whose clock is past the original expiry refreshes.
        base = shifted.url(f"/v1/files/tuf/alice/{APP}/")
        ok = updater_at("+25h", tmp_path / "client", base, root_file)
        assert ok == {"ok": True, "timestamp": 2}, ok

        # One of the two workers did it, once.
        log = shifted.log()
        assert log.count("this process re-signs online metadata") == 1, log[-4000:]
        assert log.count(f"re-signed snapshot, timestamp for alice/{APP}") == 1, log[-4000:]
    finally:
        shifted.stop()
    # The scheduled commit passes the replay every mirror runs (the TUF commit check).
    report = verify_repository(str(data / "mirror.git"))
    assert report.ok and report.checked >= 3, report.to_dict()
