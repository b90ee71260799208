"""An admin talking to a real server's TUF API over HTTP (``/tuf/v1``), and the server's online
keys as ``asfaload tuf online-keys`` prints them."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import requests
from tuf.ngclient.updater import Updater

from asfaload.devtools.server import ASFALOAD, ServerProcess
from asfaload.tuf._api import SSlibKey

NOW = int(time.time())
CHEAP: dict[str, Any] = {"opslimit": 1, "memlimit": 8192}


class Tuf:
    """A logged-in admin talking to the server."""

    def __init__(self, server: ServerProcess, token: str, admin: str) -> None:
        self.server = server
        self.admin = admin
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str, **params: str) -> requests.Response:
        return requests.get(self.server.url(path), params=params, headers=self.headers, timeout=60)

    def post(self, path: str, body: Any, **params: str) -> requests.Response:
        return requests.post(
            self.server.url(path), params=params, json=body, headers=self.headers, timeout=60
        )

    def bootstrap(self, app: str, root_doc: dict[str, Any]) -> requests.Response:
        settings = {"roles": {"root": {"expiration": 365}, "timestamp": {"expiration": 1}}}
        return self.post(
            "/tuf/v1/bootstrap",
            {"appName": app, "settings": settings, "metadata": {"root": root_doc}},
        )

    def rotate(self, app: str, root_doc: dict[str, Any]) -> requests.Response:
        return self.post("/tuf/v1/metadata", {"metadata": {"root": root_doc}}, appName=app)

    def sign(self, app: str, sig: dict[str, str]) -> requests.Response:
        return self.post("/tuf/v1/metadata/sign", {"role": "root", "signature": sig}, appName=app)

    def file(self, app: str, name: str) -> bytes:
        r = requests.get(self.server.url(f"/v1/files/tuf/{self.admin}/{app}/{name}"), timeout=30)
        assert r.status_code == 200, (name, r.status_code, r.text)
        return r.content

    def updater(
        self, app: str, tmp: Path, bootstrap: bytes | None, base: str | None = None
    ) -> Updater:
        (tmp / "meta").mkdir(parents=True, exist_ok=True)
        (tmp / "targets").mkdir(exist_ok=True)
        return Updater(
            metadata_dir=str(tmp / "meta"),
            metadata_base_url=base or self.server.url(f"/v1/files/tuf/{self.admin}/{app}/"),
            target_dir=str(tmp / "targets"),
            target_base_url=self.server.url("/v1/files/"),
            bootstrap=bootstrap,
        )


def cli(*args: str, input: str | None = None) -> str:
    done = subprocess.run(
        [ASFALOAD, *args], capture_output=True, text=True, input=input, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def online_keys(data_dir: Path, *extra: str) -> dict[str, SSlibKey]:
    out = json.loads(cli("tuf", "online-keys", "--data-dir", str(data_dir), "--json", *extra))
    keys = {}
    for role, k in out.items():
        keyid = k.pop("keyid")
        keys[role] = SSlibKey.from_dict(keyid, k)
    return keys
