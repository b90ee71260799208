"""A signature submission's nonce is recorded by the server's writer process, in the batch that
applies it: replays are still refused with 401 and never applied, whichever process sees them,
across restarts, and also when the first request was refused before reaching the writer."""

from __future__ import annotations

import sqlite3
import threading
import uuid

import pytest

from asfaload import layout
from asfaload.auth import NonceClaim
from asfaload.crypto import SecretKey, sha512
from asfaload.errors import AuthenticationError, StoreError
from asfaload.model import SignaturesFile
from asfaload.rules.tree import Change
from asfaload.store import Mirror
from asfaload.store.nonces import SqliteNonceStore
from tests.support.http import Reply
from tests.support.server import (
    post_signatures,
    seed_release,
    server_with_project,
    signed_submission,
)

P = "https/github.com/443/acme/tool"
NOW = 1_700_000_000


@pytest.fixture
def project_server(tmp_path):
    keys = [SecretKey.generate("ed25519") for _ in range(3)]
    with server_with_project(tmp_path / "data", P, keys) as (server, mirror):
        yield server, mirror, keys


def _signers_of(mirror: Mirror, index: str) -> set[str]:
    raw = mirror.view().read(layout.pending_signatures_path(index))
    assert raw is not None
    return {str(k) for k in SignaturesFile.from_bytes(raw).entries}


def _replay_refused(reply: Reply) -> None:
    assert reply.status == 401, (reply.status, reply.body)
    assert "Replay" in reply.json()["error"]


def test_a_replayed_submission_is_refused_and_not_applied(project_server):
    server, mirror, keys = project_server
    index, raw = seed_release(mirror, keys[0], "v1")
    body, headers = signed_submission(keys[1], index, raw)
    first = post_signatures(server, body, headers)
    assert first.status == 200, first.body
    head = mirror.head()
    _replay_refused(post_signatures(server, body, headers))
    assert mirror.head() == head
    assert _signers_of(mirror, index) == {str(keys[1].public_key)}


def test_the_same_submission_twice_at_once_is_applied_once(project_server):
    server, mirror, keys = project_server
    index, raw = seed_release(mirror, keys[0], "v2")
    body, headers = signed_submission(keys[2], index, raw)
    start = threading.Barrier(4)
    replies: list[Reply] = []

    def send() -> None:
        start.wait()
        replies.append(post_signatures(server, body, headers))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status for r in replies) == [200, 401, 401, 401]
    for r in replies:
        if r.status == 401:
            _replay_refused(r)
    assert _signers_of(mirror, index) == {str(keys[2].public_key)}


def test_a_submission_refused_before_its_write_still_uses_up_its_nonce(project_server):
    server, mirror, keys = project_server
    index, raw = seed_release(mirror, keys[0], "v3")
    # Well signed, but a body the handler refuses before anything is written.
    body, headers = signed_submission(keys[1], index, raw, signatures="not a map")
    refused = post_signatures(server, body, headers)
    assert refused.status == 400, refused.body
    assert "Replay" not in refused.json()["error"]
    _replay_refused(post_signatures(server, body, headers))


def test_every_refused_submission_uses_up_its_nonce(project_server):
    """Whatever refuses a verified request (its body, the handler, the backend before the
    write, the rules in the writer), the same request sent again is a replay: 401."""
    server, mirror, keys = project_server
    index, raw = seed_release(mirror, keys[0], "v5")
    outsider = SecretKey.generate("ed25519")
    missing = layout.github_release_index_path(P, "v404")
    forged = keys[1].sign(sha512(b"other bytes")).to_wire()
    cases: dict[str, tuple[SecretKey, dict[str, object]]] = {
        "body not a map": (keys[1], {"signatures": "not a map"}),
        "public_key of another key": (keys[1], {"public_key": str(keys[2].public_key)}),
        "malformed signature": (keys[1], {"signatures": {index: "garbage"}}),
        "malformed signature, unknown file": (
            keys[1],
            {"file_path": missing, "signatures": {missing: "garbage"}},
        ),
        "path outside the mirror": (keys[1], {"file_path": "../../etc/passwd"}),
        "unknown file": (keys[1], {"file_path": missing, "signatures": {missing: forged}}),
        "signature over other bytes": (keys[1], {"signatures": {index: forged}}),
        "not a signer": (
            outsider,
            {"signatures": {index: outsider.sign(sha512(raw)).to_wire()}},
        ),
    }
    head = mirror.head()
    for name, (key, override) in cases.items():
        body, headers = signed_submission(key, index, raw, **override)
        first = post_signatures(server, body, headers)
        assert first.status in (400, 401, 403, 404), (name, first.status, first.body)
        assert "Replay" not in first.json()["error"], name
        again = post_signatures(server, body, headers)
        assert again.status == 401, (name, first.status, again.status, again.body)
        assert "Replay" in again.json()["error"], (name, again.body)
    assert mirror.head() == head


def test_a_replayed_submission_is_refused_after_a_restart(project_server):
    server, mirror, keys = project_server
    index, raw = seed_release(mirror, keys[0], "v4")
    body, headers = signed_submission(keys[0], index, raw)
    assert post_signatures(server, body, headers).status == 200
    server.restart()
    _replay_refused(post_signatures(server, body, headers))
    assert _signers_of(mirror, index) == {str(keys[0].public_key)}


# --- the pieces -----------------------------------------------------------------------------------
def test_remember_all_accepts_each_nonce_once(tmp_path):
    store = SqliteNonceStore(tmp_path / "n.sqlite3")
    a, b, c = (str(uuid.uuid4()) for _ in range(3))
    assert store.remember(a, NOW + 301, NOW)
    assert store.remember(c, NOW - 1, NOW - 400)  # an old row, expired by now
    claims = [NonceClaim(x, NOW + 301, NOW) for x in (a, b, b, c)]
    assert store.remember_all(claims) == [False, True, False, True]
    assert store.remember_all([]) == []
    assert store.count() == 3
    # Committed: another connection (another process) sees them.
    assert not SqliteNonceStore(tmp_path / "n.sqlite3").remember(b, NOW + 301, NOW)


def _write(path: str) -> object:
    return lambda view, now: Change(f"write {path}", {path: b"1"})


def test_a_mirror_writing_in_process_records_the_nonce_first(tmp_path):
    mirror = Mirror.init(str(tmp_path / "m.git"), durable=False)
    store = SqliteNonceStore(tmp_path / "n.sqlite3")
    claim = NonceClaim(str(uuid.uuid4()), NOW + 301, NOW)
    with Mirror.open(mirror.path, nonces=store) as m:
        assert m.claims_nonces
        m.submit(_write("a"), nonce=claim)  # type: ignore[arg-type]
        head = m.head()
        with pytest.raises(AuthenticationError, match="Replay"):
            m.submit(_write("b"), nonce=claim)  # type: ignore[arg-type]
        assert m.head() == head
    assert not mirror.claims_nonces
    with pytest.raises(StoreError, match="nonce store"):
        mirror.submit(_write("c"), nonce=claim)  # type: ignore[arg-type]
    mirror.close()


def test_settle_records_once_and_tells_the_request_that_recorded_it(tmp_path):
    store = SqliteNonceStore(tmp_path / "n.sqlite3")
    mine = NonceClaim(str(uuid.uuid4()), NOW + 301, NOW)
    assert store.settle(mine)  # recorded now
    assert store.settle(mine)  # already this request's
    replay = NonceClaim(mine.nonce, NOW + 301, NOW)
    assert replay.owner != mine.owner
    assert not store.settle(replay)
    written = NonceClaim(str(uuid.uuid4()), NOW + 301, NOW)
    assert store.remember_all([written]) == [True]  # as the writer process does
    assert store.settle(written)
    assert not store.settle(NonceClaim(written.nonce, NOW + 301, NOW))
    plain = str(uuid.uuid4())
    assert store.remember(plain, NOW + 301, NOW)  # a row without an owner is nobody's
    assert not store.settle(NonceClaim(plain, NOW + 301, NOW))
    assert store.count() == 3


def test_a_store_from_before_owners_keeps_its_nonces(tmp_path):
    db = tmp_path / "n.sqlite3"
    old = str(uuid.uuid4())
    with sqlite3.connect(db) as conn:
        conn.execute(
            "CREATE TABLE nonces (nonce TEXT PRIMARY KEY, expires_at INTEGER NOT NULL)"
            " WITHOUT ROWID"
        )
        conn.execute("INSERT INTO nonces VALUES (?, ?)", (old, NOW + 301))
    conn.close()
    store = SqliteNonceStore(db)
    assert not store.settle(NonceClaim(old, NOW + 301, NOW))
    fresh = NonceClaim(str(uuid.uuid4()), NOW + 301, NOW)
    assert store.settle(fresh) and store.settle(fresh)
    assert SqliteNonceStore(db).count() == 2  # a second open finds the column in place
