"""Raw HTTP helpers for server tests: http.client sends the request target byte for byte
(requests/urllib3 would normalise ``..`` and re-encode paths)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any

from asfaload.auth import sign_request
from asfaload.crypto import SecretKey


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def raw_request(
    base_url: str,
    method: str,
    target: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
) -> Reply:
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        conn.putrequest(method, target, skip_accept_encoding=True)
        hdrs = dict(headers or {})
        if body or method in ("POST", "PUT"):
            hdrs.setdefault("Content-Type", "application/json")
            hdrs["Content-Length"] = str(len(body))
        for k, v in hdrs.items():
            conn.putheader(k, v)
        conn.endheaders(body if body else None)
        resp = conn.getresponse()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
    finally:
        conn.close()


def signed_request(
    base_url: str,
    key: SecretKey,
    method: str,
    target: str,
    body: bytes = b"",
    *,
    now: int | None = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    h = sign_request(key, method, target, body, now=now)
    h.update(headers or {})
    return raw_request(base_url, method, target, body, h)


def signed_json(base_url: str, key: SecretKey, method: str, target: str, doc: Any) -> Reply:
    return signed_request(base_url, key, method, target, json.dumps(doc).encode())
