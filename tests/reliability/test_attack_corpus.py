"""The attack corpus, one row per attack (tests/reliability/attacks.py has the mechanics): each
row is carried out against a live server and must meet its refusal. The summary (tried, refused,
accepted by mistake) goes to the reliability report for BENCHMARKS.md.

Rows marked by the attacker of docs/security.md: signer, maintainer, downloader, forge, mirror,
network, pusher.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from pygit2.enums import FileMode

from asfaload import layout
from asfaload.client.signing import build_revocation
from asfaload.crypto import SecretKey
from asfaload.devtools.forge import ForgeEmulator
from asfaload.devtools.server import ServerProcess
from asfaload.rules import RegisterRelease, Revoke
from asfaload.store import Mirror
from asfaload.tuf.accounts import Accounts
from tests.reliability import attacks as a
from tests.reliability.support import report
from tests.support.rules import index_bytes, register_and_activate, sign_op, signers_bytes

PLANTED = "empty directories and other entries are refused"
HOSTILE_JSON = {
    "nested": b"[" * 100_000 + b"]" * 100_000,
    "giant-int": b'{"file_path": ' + b"9" * 5000 + b"}",
}


def _get(target: str, *headers: str) -> bytes:
    lines = [f"GET {target} HTTP/1.1", "Host: 127.0.0.1", *headers, "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


A = a.Attack
ATTACKS: list[a.Attack] = [
    # --- a hostile pusher: the hook and the one commit check --------------------------------
    A(
        "empty dir at an unregistered project id",
        "push",
        a._planted(lambda w: "https/github.com/443/evil/unregistered"),
        1,
        PLANTED,
        "pusher",
    ),
    A(
        "empty dir at P/asfaload.signers.pending",
        "push",
        a._planted(lambda w: f"{a.P}/asfaload.signers.pending"),
        1,
        PLANTED,
        "pusher",
    ),
    A(
        "empty dir at X.revocation.json",
        "push",
        a._planted(lambda w: w.complete + ".revocation.json"),
        1,
        PLANTED,
        "pusher",
    ),
    A("push to another ref", "push", a._push_other_ref, 1, "only refs/heads/main", "pusher"),
    A(
        "delete main",
        "push",
        a._push_delete_main,
        1,
        "deleting refs/heads/main is not allowed",
        "pusher",
    ),
    A("rewrite main (force push)", "push", a._push_rewrite, 1, "non-fast-forward", "pusher"),
    A("merge commit", "push", a._push_merge, 1, "merge commits are not allowed", "pusher"),
    A(
        "symlink",
        "push",
        a._push_entry("evil", FileMode.LINK),
        1,
        "symlinks are not allowed",
        "pusher",
    ),
    A(
        "executable file",
        "push",
        a._push_entry("run.sh", FileMode.BLOB_EXECUTABLE),
        1,
        "only regular non-executable files",
        "pusher",
    ),
    A("bad path", "push", a._push_entry(".hidden", FileMode.BLOB), 1, "invalid path", "pusher"),
    A("file over 1 MiB", "push", a._push_oversized, 1, "over the", "pusher"),
    A("committer time in the future", "push", a._push_future, 1, "in the future", "pusher"),
    A("registration by push", "push", a._push_registration, 1, "no allowed operation", "pusher"),
    A("pack over receive.maxInputSize", "push", a._push_over_receive_max, 1, "413", "pusher"),
    # --- request authentication -----------------------------------------------------------
    A(
        "refused signature request replayed",
        "rest",
        a._refused_then_replayed,
        401,
        "Replay",
        "network",
    ),
    A("accepted request replayed", "rest", a._accepted_then_replayed, 401, "Replay", "network"),
    A("stale timestamp", "rest", a._stale_timestamp, 401, "Timestamp", "network"),
    A(
        "signature for another method",
        "rest",
        a._wrong_method,
        401,
        "Signature verification failed",
        "network",
    ),
    A(
        "signature for another path",
        "rest",
        a._wrong_path,
        401,
        "Signature verification failed",
        "network",
    ),
    A("tampered body", "rest", a._tampered_body, 401, "Signature verification failed", "network"),
    # --- signers and maintainers beyond their rights ----------------------------------------
    A(
        "outsider signs a release",
        "rest",
        a._outsider_signs,
        403,
        "not an authorized signer",
        "signer",
    ),
    A(
        "one minisign key under two key ids takes two seats",
        "rest",
        a._one_key_two_ids,
        400,
        "duplicate key in group",
        "maintainer",
    ),
    A(
        "TUF root listing one key under two keyids",
        "tuf",
        a._tuf_twin_keys,
        400,
        "same public key",
        "maintainer",
    ),
    A(
        "TUF root below its threshold",
        "tuf",
        a._tuf_below_threshold,
        400,
        "not signed by its own root threshold",
        "maintainer",
    ),
    A("sign a revoked release", "rest", a._sign_revoked, 409, "revoked", "signer"),
    A(
        "revoke by a non-revoker",
        "rest",
        a._revoke_by_non_revoker,
        400,
        "not authorized to revoke",
        "signer",
    ),
    A(
        "forged completion below the threshold",
        "rules",
        a._forged_completion,
        400,
        "not complete according to signatures",
        "mirror",
    ),
    # --- a hostile forge and URLs ----------------------------------------------------------
    A(
        "oversized signers file",
        "rest",
        a._oversized_signers_file,
        400,
        "larger than the limit",
        "forge",
    ),
    # The read timeout or the total one, whichever the machine's load lets fire first:
    # "timed out" / "Timed out after 5 s".
    A("silent forge", "rest", a._silent_forge, 500, "imed out", "forge"),
    A(
        "signers file URL at a commit id",
        "rest",
        a._commit_id_signers_url,
        400,
        "not the commit",
        "maintainer",
    ),
    A(
        "SSRF to loopback",
        "rest",
        a._ssrf("https://127.0.0.1/asfaload.signers.json"),
        400,
        "loopback address",
        "maintainer",
    ),
    A(
        "SSRF to a private address",
        "rest",
        a._ssrf("https://10.0.0.1/asfaload.signers.json"),
        400,
        "private address",
        "maintainer",
    ),
    A(
        "SSRF to the metadata address",
        "rest",
        a._ssrf("http://169.254.169.254/latest/asfaload.signers.json"),
        400,
        "link-local address",
        "maintainer",
    ),
    A(
        "%2F escaping the rewrite target",
        "rest",
        a._escape_rewrite("%2F"),
        400,
        "Invalid URL path segment",
        "maintainer",
    ),
    A(
        "%5C escaping the rewrite target",
        "rest",
        a._escape_rewrite("%5C"),
        400,
        "Invalid URL path segment",
        "maintainer",
    ),
    # --- paths --------------------------------------------------------------------------------
    A(
        "path traversal ..",
        "rest",
        a._traversal("/v1/files/../../etc/passwd"),
        400,
        "Invalid file path",
        "downloader",
    ),
    A(
        "path traversal %2e%2e",
        "rest",
        a._traversal("/v1/files/%2e%2e/%2e%2e/etc/passwd"),
        400,
        "Invalid file path",
        "downloader",
    ),
    A(
        "path traversal %2F",
        "rest",
        a._traversal("/v1/files/a%2F..%2F..%2Fetc%2Fpasswd"),
        400,
        "Invalid file path",
        "downloader",
    ),
    # --- hostile JSON and HTTP ----------------------------------------------------------------
    *[
        A(
            f"{kind} JSON on {target}",
            "rest",
            a._hostile_json(target, body),
            400,
            "nvalid",
            "network",
        )
        for target in ("/v1/signatures", "/v1/register_repo", "/login", "/tuf/v1/bootstrap")
        for kind, body in HOSTILE_JSON.items()
    ],
    A(
        "oversized request line",
        "http",
        a._raw_exchange(_get("/v1/files/" + "a" * 9000)),
        414,
        "Request line too long",
        "network",
    ),
    A(
        "oversized header",
        "http",
        a._raw_exchange(_get("/v1/ping", "X-Big: " + "b" * 9000)),
        431,
        "header field too large",
        "network",
    ),
    A(
        "malformed request",
        "http",
        a._raw_exchange(b"GARBAGE\r\n\r\n"),
        400,
        "malformed HTTP request",
        "network",
    ),
    A("120 stalled connections", "http", a._stalled_connections, 200, "served while", "network"),
    # --- the server's own files ----------------------------------------------------------------
    A("private/ readable by others", "disk", a._private_modes, 0, "owner only", "mirror"),
]


@pytest.fixture(scope="module")
def attack_targets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[a.World]:
    root = tmp_path_factory.mktemp("attacks")
    silent = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_say_nothing() -> None:
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except TimeoutError:
                continue
            except OSError:
                return

    threading.Thread(target=accept_and_say_nothing, daemon=True).start()
    keys = [SecretKey.generate("ed25519") for _ in range(3)]
    with ForgeEmulator(root / "forge") as forge:
        rewrites = f"{forge.rewrites()},https://silent.example.com=http://127.0.0.1:{silent.getsockname()[1]}"
        (root / "data").mkdir()
        Accounts(root / "data" / "private").add_user(
            "admin", "admin-password", opslimit=1, memlimit=8192
        )
        server = ServerProcess(
            root / "data",
            env={
                "ASFALOAD_URL_REWRITES": rewrites,
                "ASFALOAD_HTTP_TIMEOUT": "5",
                "ASFALOAD_MAX_PUSH_BYTES": str(1024 * 1024),
            },
        ).start()
        mirror = Mirror.open(str(server.data_dir / "mirror.git"))
        try:
            login = requests.post(
                server.url("/login"),
                json={"username": "admin", "password": "admin-password"},
                timeout=60,
            )
            assert login.status_code == 200, login.text
            signers = signers_bytes(
                artifact=[(keys[:2], 2)], admin=[([keys[0]], 1)], revocation=[([keys[2]], 1)]
            )
            register_and_activate(mirror, a.P, signers, keys)
            indexes = {}
            for tag in ("pending", "complete", "revoked"):
                x = layout.github_release_index_path(a.P, tag)
                indexes[x] = index_bytes(f"{tag}.tgz")
                mirror.submit(RegisterRelease(x, indexes[x], keys[0].public_key))
                if tag != "pending":
                    for k in keys[:2]:
                        mirror.submit(sign_op(mirror.view(), x, k))
            revoked = layout.github_release_index_path(a.P, "revoked")
            req = build_revocation(keys[2], indexes[revoked], now=int(time.time()))
            mirror.submit(Revoke(revoked, req.document.raw, req.signature, keys[2].public_key))
            yield a.World(
                server=server,
                forge=forge,
                keys=keys,
                outsider=SecretKey.generate("ed25519"),
                minisign=SecretKey.generate("minisign"),
                pending=layout.github_release_index_path(a.P, "pending"),
                complete=layout.github_release_index_path(a.P, "complete"),
                index_bytes=indexes,
                work=root,
                tuf_token=login.json()["token"],
            )
        finally:
            mirror.close()
            server.stop()
            stop.set()
            silent.close()
            for s in held:
                s.close()


RESULTS: dict[str, str] = {}


@pytest.fixture(scope="module", autouse=True)
def summary() -> Iterator[None]:
    yield
    refused = sum(1 for v in RESULTS.values() if v == "refused")
    accepted = sum(1 for v in RESULTS.values() if v == "accepted")
    report(
        "attacks",
        {
            "tried": len(RESULTS),
            "refused": refused,
            "accepted_by_mistake": accepted,
            "other": len(RESULTS) - refused - accepted,
            "rows": dict(sorted(RESULTS.items())),
        },
    )


@pytest.mark.parametrize("attack", ATTACKS, ids=[x.name for x in ATTACKS])
def test_attack_is_refused(attack_targets: a.World, attack: a.Attack) -> None:
    RESULTS[attack.name] = "tried"
    seen = attack.run(attack_targets)
    if seen.message.startswith(a.ACCEPTED):
        RESULTS[attack.name] = "accepted"
    assert (seen.status, attack.reason in seen.message) == (attack.status, True), seen
    assert (
        "Traceback" not in seen.message and str(attack_targets.server.data_dir) not in seen.message
    )
    RESULTS[attack.name] = "refused"


def test_every_actor_of_the_threat_model_attacks() -> None:
    actors = {x.attacker for x in ATTACKS}
    assert actors == {"signer", "maintainer", "downloader", "forge", "mirror", "network", "pusher"}


def test_the_corpus_names_are_unique() -> None:
    assert len({x.name for x in ATTACKS}) == len(ATTACKS)


def test_corpus_rows_are_in_the_threat_model() -> None:
    # docs/security.md names every row's door; a row added here is documented there.
    doc = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    assert "tests/reliability/test_attack_corpus.py" in doc
