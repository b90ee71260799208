"""A real server whose mirror holds one active project, and signature submissions to it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from asfaload import layout
from asfaload.auth import sign_request
from asfaload.crypto import SecretKey, sha512
from asfaload.devtools.server import ServerProcess
from asfaload.model.index import PublishedFile, ReleaseIndex
from asfaload.rules.ops import RegisterRelease
from asfaload.store import Mirror
from tests.support.http import Reply, raw_request
from tests.support.rules import T0, P, register_and_activate, signers_bytes


@contextmanager
def server_with_project(
    data_dir: Path, project: str, keys: Sequence[SecretKey], **server: Any
) -> Iterator[tuple[ServerProcess, Mirror]]:
    """A started server whose mirror holds ``project``, active: every key an artifact signer
    (all of them needed), the first its admin. Yields the server and the mirror opened from
    this process (to seed releases)."""
    signers = signers_bytes(artifact=[(list(keys), len(keys))], admin=[([keys[0]], 1)])
    proc = ServerProcess(data_dir, **server).start()
    mirror = Mirror.open(str(proc.data_dir / "mirror.git"))
    try:
        register_and_activate(mirror, project, signers, keys)
        yield proc, mirror
    finally:
        mirror.close()
        proc.stop()


def seed_release(mirror: Mirror, key: SecretKey, tag: str) -> tuple[str, bytes]:
    index = layout.github_release_index_path(P, tag)
    url = f"https://github.com/acme/tool/releases/download/{tag}/tool.tgz"
    raw = ReleaseIndex.create(
        [PublishedFile("tool.tgz", "Sha256", url, "ab" * 32)], mirrored_on=T0
    ).to_bytes()
    mirror.submit(RegisterRelease(index, raw, key.public_key))
    return index, raw


def signed_submission(key: SecretKey, index: str, raw: bytes, **override: object):
    doc = {
        "file_path": index,
        "public_key": str(key.public_key),
        "signatures": {index: key.sign(sha512(raw)).to_wire()},
        **override,
    }
    body = json.dumps(doc).encode()
    return body, sign_request(key, "POST", "/v1/signatures", body)


def post_signatures(server: ServerProcess, body: bytes, headers: dict[str, str]) -> Reply:
    return raw_request(server.base_url, "POST", "/v1/signatures", body, headers)
