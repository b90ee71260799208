"""The attack corpus: every attack of the hardening work, run against a real server.

Each :class:`Attack` is a row: a name, the door it uses, a function that carries the attack out
against the :class:`World` (a live ``asfaload serve`` with a registered project, a pending and a
complete release, reached over loopback; the forge emulator behind the operator's URL rewrite;
real git pushing to ``/mirror.git``) and the refusal it must meet: a status (HTTP status, or
git's exit code for a push) and a substring of the one-line reason.

``tests/reliability/test_attack_corpus.py`` runs the table; ``bench/bench_attacks.py`` reports
what it tried, what was refused and what was accepted by mistake.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pygit2
from pygit2.enums import FileMode

from asfaload import layout
from asfaload.auth import sign_request
from asfaload.client.gitsign import signatures_for
from asfaload.client.signing import build_revocation
from asfaload.crypto import PublicKey, SecretKey, sha512
from asfaload.devtools.forge import ForgeEmulator
from asfaload.devtools.server import ServerProcess
from asfaload.errors import AsfaloadError
from asfaload.model import SignaturesFile, SignerGroup, SignersFile
from asfaload.rules import Change, DictTree, apply
from asfaload.rules.queries import file_status
from asfaload.store import GitTreeView, apply_change
from tests.support.git import plant_empty_tree
from tests.support.http import Reply, raw_request, signed_json, signed_request

P = "https/github.com/443/acme/tool"
SIGNERS_URL = "https://github.com/acme/tool/blob/main/asfaload.signers.json"
ACCEPTED = "accepted"  # what an attack that got through observes instead of a refusal


@dataclass(frozen=True)
class Observed:
    """What the attacker saw: a status (HTTP status, or exit code) and the reason given."""

    status: int
    message: str


@dataclass
class World:
    server: ServerProcess
    forge: ForgeEmulator
    keys: list[SecretKey]  # artifact signers 0 and 1 (0 is the admin); 2 is the revocation key
    outsider: SecretKey
    minisign: SecretKey  # a minisign key outside the project
    pending: str  # a release waiting for signatures
    complete: str  # a release fully signed
    index_bytes: dict[str, bytes]
    work: Path
    tuf_token: str  # an admin's bearer token for /tuf/v1

    @property
    def remote(self) -> str:
        return self.server.url("/mirror.git")


@dataclass(frozen=True)
class Attack:
    name: str
    door: str
    run: Callable[[World], Observed]
    status: int
    reason: str
    attacker: str  # the threat model's actor (docs/security.md)


# --- helpers ----------------------------------------------------------------------------------
def _http(reply: Reply) -> Observed:
    try:
        doc = json.loads(reply.body)
        message = doc["error"] if isinstance(doc, dict) and "error" in doc else ACCEPTED
        if isinstance(doc, dict) and "details" in doc:  # the TUF API's second line
            message = f"{message}: {doc['details']}"
    except ValueError:
        message = reply.body[:200].decode("latin-1")
    return Observed(reply.status, str(message))


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300
    )


class Pusher:
    """A bare clone of the mirror whose commits are built by hand and pushed over HTTP."""

    def __init__(self, world: World, name: str) -> None:
        self.world = world
        self.path = world.work / f"push-{name}.git"
        self.repo = pygit2.init_repository(str(self.path), bare=True)

    def tip(self) -> pygit2.Commit:
        res = _git(self.path, "fetch", "-q", self.world.remote, "+refs/heads/main:refs/tip")
        assert res.returncode == 0, res.stderr
        return self.repo.revparse_single("refs/tip").peel(pygit2.Commit)

    def commit(
        self, tree: pygit2.Oid, parents: list[pygit2.Oid], when: int | None = None
    ) -> pygit2.Oid:
        tip_time = self.tip().commit_time
        who = pygit2.Signature("attacker", "a@example.com", when or max(int(time.time()), tip_time))
        return self.repo.create_commit(None, who, who, "attack", tree, parents)

    def signed_change_tree(self, key: SecretKey, subject: str, when: int) -> pygit2.Oid:
        """The tip's tree with ``key``'s valid signature of ``subject``, as the rules derive it."""
        tip = self.tip()
        view = GitTreeView(self.repo, tip.tree)
        change = apply(view, signatures_for(view, key, subject), when)
        return apply_change(self.repo, tip.tree, change)

    def push(self, commit: pygit2.Oid | str, ref: str = "refs/heads/main", *flags: str) -> Observed:
        res = _git(self.path, "push", "--porcelain", *flags, self.world.remote, f"{commit}:{ref}")
        if res.returncode == 0:
            return Observed(0, ACCEPTED)
        remote = [
            ln.removeprefix("remote:").strip()
            for ln in res.stderr.splitlines()
            if ln.startswith("remote:") and ln.removeprefix("remote:").strip()
        ]
        ours = [ln for ln in remote if ln.startswith("asfaload:")]
        lines = ours or remote or [ln for ln in res.stdout.splitlines() if ln.startswith("!")]
        return Observed(res.returncode, " ".join(lines) or res.stderr.strip()[-300:])


def _now_after_tip(pusher: Pusher) -> int:
    return max(int(time.time()), pusher.tip().commit_time)


# --- pushes -------------------------------------------------------------------------------------
def _planted(path_of: Callable[[World], str]) -> Callable[[World], Observed]:
    def run(world: World) -> Observed:
        pusher = Pusher(world, "plant")
        when = _now_after_tip(pusher)
        tree = pusher.signed_change_tree(world.keys[1], world.pending, when)
        tree = plant_empty_tree(pusher.repo, tree, path_of(world))
        return pusher.push(pusher.commit(tree, [pusher.tip().id], when))

    return run


def _push_entry(name: str, mode: int, data: bytes = b"target") -> Callable[[World], Observed]:
    def run(world: World) -> Observed:
        pusher = Pusher(world, "entry")
        tip = pusher.tip()
        tb = pusher.repo.TreeBuilder(tip.tree)
        tb.insert(name, pusher.repo.create_blob(data), mode)
        return pusher.push(pusher.commit(tb.write(), [tip.id]))

    return run


def _push_other_ref(world: World) -> Observed:
    pusher = Pusher(world, "ref")
    tip = pusher.tip()
    return pusher.push(tip.id, "refs/heads/other")


def _push_delete_main(world: World) -> Observed:
    pusher = Pusher(world, "delete")
    pusher.tip()
    return pusher.push("", "refs/heads/main")


def _push_rewrite(world: World) -> Observed:
    pusher = Pusher(world, "rewrite")
    tip = pusher.tip()
    return pusher.push(
        pusher.commit(tip.parents[0].tree_id, [tip.parents[0].id]), "refs/heads/main", "--force"
    )


def _push_merge(world: World) -> Observed:
    pusher = Pusher(world, "merge")
    tip = pusher.tip()
    when = _now_after_tip(pusher)
    tree = pusher.signed_change_tree(world.keys[1], world.pending, when)
    return pusher.push(pusher.commit(tree, [tip.id, tip.parents[0].id], when))


def _push_future(world: World) -> Observed:
    pusher = Pusher(world, "future")
    future = int(time.time()) + 3600
    tree = pusher.signed_change_tree(world.keys[1], world.pending, future)
    return pusher.push(pusher.commit(tree, [pusher.tip().id], future))


def _push_registration(world: World) -> Observed:
    pusher = Pusher(world, "register")
    tip = pusher.tip()
    raw = SignersFile.create([SignerGroup((world.outsider.public_key,), 1)], timestamp=1).raw
    pending = layout.signers_file_path("https/github.com/443/evil/tool", pending=True)
    tree = apply_change(pusher.repo, tip.tree, Change("register", {pending: raw}))
    return pusher.push(pusher.commit(tree, [tip.id]))


def _push_oversized(world: World) -> Observed:
    # A file over the hook's 1 MiB cap, in place of a valid signature envelope.
    pusher = Pusher(world, "big")
    tip = pusher.tip()
    big = {layout.pending_signatures_path(world.pending): b" " * (1024 * 1024 + 1)}
    tree = apply_change(pusher.repo, tip.tree, Change("big", big))
    return pusher.push(pusher.commit(tree, [tip.id]))


def _push_over_receive_max(world: World) -> Observed:
    # A pack far over receive.maxInputSize (set small for this server): git refuses to read it.
    pusher = Pusher(world, "huge")
    tip = pusher.tip()
    tb = pusher.repo.TreeBuilder(tip.tree)
    tb.insert("noise", pusher.repo.create_blob(os.urandom(3 * 1024 * 1024)), FileMode.BLOB)
    return pusher.push(pusher.commit(tb.write(), [tip.id]))


# --- REST ---------------------------------------------------------------------------------------
def _sig_body(key: SecretKey, x: str, data: bytes) -> bytes:
    doc = {
        "file_path": x,
        "public_key": str(key.public_key),
        "signatures": {x: key.sign(sha512(data)).to_wire()},
    }
    return json.dumps(doc).encode()


def _refused_then_replayed(world: World) -> Observed:
    body = _sig_body(world.outsider, world.pending, world.index_bytes[world.pending])
    headers = sign_request(world.outsider, "POST", "/v1/signatures", body)
    first = raw_request(world.server.base_url, "POST", "/v1/signatures", body, headers)
    assert first.status == 403, first.body  # refused the first time: not a signer
    return _http(raw_request(world.server.base_url, "POST", "/v1/signatures", body, headers))


def _accepted_then_replayed(world: World) -> Observed:
    headers = sign_request(world.keys[0], "GET", "/v1/pending_signatures")
    first = raw_request(world.server.base_url, "GET", "/v1/pending_signatures", b"", headers)
    assert first.status == 200, first.body
    return _http(raw_request(world.server.base_url, "GET", "/v1/pending_signatures", b"", headers))


def _stale_timestamp(world: World) -> Observed:
    return _http(
        signed_request(
            world.server.base_url,
            world.keys[0],
            "GET",
            "/v1/pending_signatures",
            now=int(time.time()) - 3600,
        )
    )


def _wrong_method(world: World) -> Observed:
    headers = sign_request(world.keys[0], "GET", "/v1/signatures")
    body = _sig_body(world.keys[0], world.pending, world.index_bytes[world.pending])
    return _http(raw_request(world.server.base_url, "POST", "/v1/signatures", body, headers))


def _wrong_path(world: World) -> Observed:
    headers = sign_request(world.keys[0], "GET", "/v1/pending_signatures")
    target = "/v1/files-to-sign/" + world.pending
    return _http(raw_request(world.server.base_url, "GET", target, b"", headers))


def _tampered_body(world: World) -> Observed:
    body = _sig_body(world.keys[1], world.pending, world.index_bytes[world.pending])
    headers = sign_request(world.keys[1], "POST", "/v1/signatures", body)
    tampered = body.replace(b'"file_path": "', b'"file_path": "x', 1)
    return _http(raw_request(world.server.base_url, "POST", "/v1/signatures", tampered, headers))


def _outsider_signs(world: World) -> Observed:
    body = _sig_body(world.outsider, world.pending, world.index_bytes[world.pending])
    return _http(
        raw_request(
            world.server.base_url,
            "POST",
            "/v1/signatures",
            body,
            sign_request(world.outsider, "POST", "/v1/signatures", body),
        )
    )


def _sign_revoked(world: World) -> Observed:
    x = layout.github_release_index_path(P, "revoked")
    body = _sig_body(world.keys[1], x, world.index_bytes[x])
    headers = sign_request(world.keys[1], "POST", "/v1/signatures", body)
    return _http(raw_request(world.server.base_url, "POST", "/v1/signatures", body, headers))


def _register(world: World, url: str, key: SecretKey | None = None) -> Observed:
    who = key or world.keys[0]
    doc = {"signers_file_url": url, "public_key": str(who.public_key)}
    return _http(signed_json(world.server.base_url, who, "POST", "/v1/register_repo", doc))


def _ssrf(url: str) -> Callable[[World], Observed]:
    return lambda world: _register(world, url)


def _escape_rewrite(encoded: str) -> Callable[[World], Observed]:
    # The operator's rewrite sends github.com to the forge emulator's directory; an encoded
    # separator must not climb out of it.
    return lambda world: _register(
        world, f"https://github.com/acme/tool/blob/main/{encoded}..{encoded}..{encoded}secret.json"
    )


def _oversized_signers_file(world: World) -> Observed:
    url = world.forge.put_github_file(
        "acme", "huge", "main", "asfaload.signers.json", b" " * (2 * 1024 * 1024)
    )
    return _register(world, url)


def _commit_id_signers_url(world: World) -> Observed:
    return _register(
        world, "https://github.com/acme/pinned/blob/" + "a" * 40 + "/asfaload.signers.json"
    )


def _silent_forge(world: World) -> Observed:
    # silent.example.com is rewritten to a listener that accepts connections and never answers.
    return _register(world, "https://silent.example.com/acme/asfaload.signers.json")


def _one_key_two_ids(world: World) -> Observed:
    # One minisign key under a second key id, given the second seat of a 2-of-2 group.
    seat = world.minisign.public_key
    twin = PublicKey("minisign", seat.raw[:2] + bytes(8) + seat.raw[10:])
    other = SecretKey.generate("minisign").public_key
    raw = SignersFile.create(
        [SignerGroup((seat, other), 2)], admin_keys=[SignerGroup((seat,), 1)], timestamp=1
    ).raw.replace(str(other).encode(), str(twin).encode())
    url = world.forge.put_github_file("acme", "twins", "main", "asfaload.signers.json", raw)
    return _register(world, url, world.minisign)


def _revoke_by_non_revoker(world: World) -> Observed:
    key = world.keys[1]  # an artifact signer, not a revocation key
    data = world.index_bytes[world.complete]
    req = build_revocation(key, data, now=int(time.time()))
    doc = {
        "file_path": world.complete,
        "revocation_json": req.revocation_json,
        "signature": req.signature.to_wire(),
        "public_key": str(key.public_key),
    }
    return _http(signed_json(world.server.base_url, key, "POST", "/v1/revoke", doc))


def _traversal(target: str) -> Callable[[World], Observed]:
    return lambda world: _http(raw_request(world.server.base_url, "GET", target))


def _hostile_json(target: str, body: bytes) -> Callable[[World], Observed]:
    def run(world: World) -> Observed:
        if target.startswith("/v1/"):
            return _http(signed_request(world.server.base_url, world.keys[0], "POST", target, body))
        headers = (
            {"Authorization": f"Bearer {world.tuf_token}"} if target.startswith("/tuf/") else {}
        )
        return _http(raw_request(world.server.base_url, "POST", target, body, headers))

    return run


def _raw_exchange(raw: bytes) -> Callable[[World], Observed]:
    def run(world: World) -> Observed:
        with socket.create_connection(("127.0.0.1", world.server.port), timeout=60) as s:
            s.sendall(raw)
            s.shutdown(socket.SHUT_WR)
            chunks = []
            while chunk := s.recv(65536):
                chunks.append(chunk)
        data = b"".join(chunks)
        head, _, body = data.partition(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.") else 0
        try:
            message = str(json.loads(body)["error"])
        except (ValueError, KeyError, TypeError):
            message = "not JSON: " + body[:100].decode("latin-1")
        return Observed(status, message)

    return run


def _stalled_connections(world: World) -> Observed:
    # 120 clients that open a request and never finish it; a real client must still be served.
    stalled = []
    try:
        for i in range(120):
            s = socket.create_connection(("127.0.0.1", world.server.port), timeout=10)
            s.sendall(b"POST /v1/signatures HTTP/1.1\r\nHost: x\r\n" if i % 2 else b"GE")
            stalled.append(s)
        reply = raw_request(world.server.base_url, "GET", "/v1/ping")
        if reply.status != 200:
            return Observed(reply.status, ACCEPTED + ": the service was denied")
        return Observed(reply.status, "served while 120 connections stall")
    finally:
        for s in stalled:
            s.close()


def _tuf_bootstrap(world: World, app: str, root_doc: dict[str, Any]) -> Observed:
    settings = {"roles": {"root": {"expiration": 365}, "timestamp": {"expiration": 1}}}
    body = {"appName": app, "settings": settings, "metadata": {"root": root_doc}}
    headers = {"Authorization": f"Bearer {world.tuf_token}"}
    reply = raw_request(
        world.server.base_url, "POST", "/tuf/v1/bootstrap", json.dumps(body).encode(), headers
    )
    return _http(reply) if reply.status != 202 else Observed(202, ACCEPTED)


def _tuf_twin_keys(world: World) -> Observed:
    from tests.support.tuf import key, signed_by_twins, twin_root
    from tests.support.tuf_server import online_keys

    holder = key()
    root, twin = twin_root(1, holder, "upper", online_keys(world.server.data_dir))
    return _tuf_bootstrap(world, "twins", signed_by_twins(root, holder, twin))


def _tuf_below_threshold(world: World) -> Observed:
    from tests.support.tuf import key, make_root, signed_doc
    from tests.support.tuf_server import online_keys

    first, second = key(), key()
    root = make_root(1, [first, second], 2, online_keys(world.server.data_dir))
    return _tuf_bootstrap(world, "half", signed_doc(root, [first]))


def _private_modes(world: World) -> Observed:
    loose = []
    for dirpath, dirnames, filenames in os.walk(world.server.data_dir / "private"):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            if os.lstat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
                loose.append(name)
    if loose:
        return Observed(0, ACCEPTED + ": readable by others: " + ", ".join(sorted(loose)))
    return Observed(0, "owner only")


# --- verdicts the rules and the client give on forged or incomplete state --------------------
def _forged_completion(world: World) -> Observed:
    # A mirror (or a forged copy) claiming a release complete with one signature of two.
    x = world.pending
    key = world.keys[0]
    env = SignaturesFile.empty().with_entry(key.public_key, key.sign(sha512(world.index_bytes[x])))
    signers = _read(world, layout.signers_file_path(P))
    tree = DictTree(
        {
            x: world.index_bytes[x],
            layout.signatures_path(x): env.to_bytes(),
            layout.local_signers_path(x): signers,
            layout.history_path(P): _read(world, layout.history_path(P)),
            layout.signers_file_path(P): signers,
        }
    )
    try:
        file_status(tree, x)
    except AsfaloadError as e:
        return Observed(e.http_status, str(e))
    return Observed(200, ACCEPTED)


def _read(world: World, path: str) -> bytes:
    reply = raw_request(world.server.base_url, "GET", "/v1/files/" + path)
    assert reply.status == 200, (path, reply.status)
    return reply.body
