"""The server's writer process (asfaload.store.writer_process): real processes, a real Unix socket."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from asfaload.devtools.server import ServerProcess, process_tree
from asfaload.errors import RuleViolation, StoreError
from asfaload.rules import AddSignatures
from asfaload.rules.tree import Change, TreeView
from asfaload.store import Mirror
from asfaload.store.objects.fast.info import pack_names
from asfaload.store.writer_link import RemoteWriter
from asfaload.store.writer_process import WriterProcess, WriterService


def test_operations_cross_to_the_writer_process_and_back(tmp_path: Path) -> None:
    path = str(tmp_path / "m.git")
    Mirror.init(path).close()
    with WriterProcess(path) as writer:
        mirror = Mirror.open(path, writer_socket=writer.socket_path)
        try:
            # A rules operation pickles: it is applied by the writer process, and its rule
            # violation comes back as the same exception.
            sub = "https/github.com/443/acme/tool/releases/tag/v1/asfaload.index.json"
            from asfaload.crypto import SecretKey, sha512

            key = SecretKey.generate("ed25519")
            op = AddSignatures(sub, key.public_key, {sub: key.sign(sha512(b"x"))})
            with pytest.raises(RuleViolation, match=f"File not found: {sub}"):
                mirror.submit(op)
            # A closure does not pickle: refused, never silently applied elsewhere; asked for,
            # this process's own writer applies it, under the same lock, on the same branch.
            seen: list[int] = []

            def closure(view: TreeView, now: int) -> Change:
                seen.append(now)
                return Change("local", {"a/local": b"1"})

            head = mirror.head()
            with pytest.raises(StoreError, match="cannot be sent to the writer process"):
                mirror.submit(closure)
            assert not seen and mirror.head() == head
            local = mirror.submit(closure, in_process=True)
            assert seen and mirror.head() == local.commit_id
        finally:
            mirror.close()
    assert subprocess.run(["git", "fsck", "--strict"], cwd=path, check=False).returncode == 0


def test_the_writer_service_batches_many_workers(tmp_path: Path) -> None:
    """In-process service over a real socket: 24 clients, each write committed exactly once."""
    path = str(tmp_path / "m.git")
    Mirror.init(path).close()
    sock = str(tmp_path / "w.sock")
    service = WriterService(Mirror.open(path), sock)
    threading.Thread(target=service.serve_forever, daemon=True).start()
    client = RemoteWriter(sock)
    results: list[str] = []
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            payload = _pickled_write(f"w/{i}", str(i).encode())
            results.append(client.submit_pickled(payload).commit_id)
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    service.close()
    assert not errors and len(set(results)) == 24
    view = Mirror.open(path).view()
    assert all(view.read(f"w/{i}") == str(i).encode() for i in range(24))


def test_dumb_http_files_follow_the_writer_process_once_it_is_idle(tmp_path: Path) -> None:
    """The writer process rewrites info/refs and objects/info/packs when nothing waits (under
    load, at most INFO_DELAY late), naming the acknowledged tip and every pack."""
    path = str(tmp_path / "m.git")
    Mirror.init(path).close()
    with WriterProcess(path) as writer:
        client = RemoteWriter(writer.socket_path)
        tip = client.submit_pickled(_pickled_write("x/y", b"1")).commit_id
        deadline = time.monotonic() + 10
        refs = Path(path, "info", "refs")
        while refs.read_text() != f"{tip}\trefs/heads/main\n":
            assert time.monotonic() < deadline, refs.read_text()
            time.sleep(0.01)
        listed = Path(path, "objects", "info", "packs").read_text().split()
        assert set(listed[1::2]) == set(pack_names(path))
        client.close()


def test_a_worker_that_cannot_reach_the_writer_writes_itself(tmp_path: Path) -> None:
    path = str(tmp_path / "m.git")
    Mirror.init(path).close()
    with Mirror.open(path, writer_socket=str(tmp_path / "nobody.sock")) as mirror:
        res = mirror.submit(_ExampleWrite("x/y", b"1"))
        assert mirror.head() == res.commit_id and mirror.view().read("x/y") == b"1"


def test_an_answer_that_never_comes_is_an_error_not_a_guess(tmp_path: Path) -> None:
    """A writer that dies mid-request: the worker cannot know whether the write landed, so it
    reports a StoreError (500) instead of writing again."""
    sock = str(tmp_path / "mute.sock")
    import socket

    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock)
    server.listen(1)

    def mute() -> None:
        conn, _ = server.accept()
        conn.recv(1 << 16)
        conn.close()

    threading.Thread(target=mute, daemon=True).start()
    with pytest.raises(StoreError, match="did not answer"):
        RemoteWriter(sock).submit_pickled(_pickled_write("a", b"b"))
    server.close()


def test_a_writer_process_that_cannot_start_is_a_store_error(tmp_path: Path) -> None:
    """No mirror there: the child exits before it is ready (``asfaload serve`` then lets its
    workers write themselves)."""
    with pytest.raises(StoreError, match="did not start"):
        WriterProcess(str(tmp_path / "missing.git"))


def test_the_writer_process_leaves_when_its_server_is_gone(tmp_path: Path) -> None:
    path = str(tmp_path / "m.git")
    Mirror.init(path).close()
    writer = WriterProcess(path)
    sock_dir = os.path.dirname(writer.socket_path)
    # What a SIGKILLed server leaves: the writer's stdin closes, nobody calls stop().
    assert writer._proc.stdin is not None
    writer._proc.stdin.close()
    assert writer._proc.wait(timeout=60) == 0
    assert not os.path.exists(sock_dir)
    writer.stop()


def test_asfaload_serve_writes_through_its_writer_process(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data, workers=2).start()
    try:
        children = process_tree(server.pid)
        writers = [p for p, (cmd, _) in children.items() if "asfaload.store.writer_process" in cmd]
        assert len(writers) == 1, children
        assert requests.get(server.url("/v1/ping"), timeout=30).status_code == 200
    finally:
        server.stop()
    # Stopped with the server, its socket directory removed.
    assert not Path(f"/proc/{writers[0]}").exists() or "Z" in _state(writers[0])


# --- helpers ----------------------------------------------------------------------------------
class _ExampleWrite:
    """A picklable operation (module level, so pickle can name it)."""

    def __init__(self, path: str, data: bytes) -> None:
        self.path, self.data = path, data

    def __call__(self, view: TreeView, now: int) -> Change:
        return Change(f"write {self.path}", {self.path: self.data})


def _pickled_write(path: str, data: bytes) -> bytes:
    from asfaload.store.writer_link import request_payload

    return request_payload(_ExampleWrite(path, data))


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"


def test_a_writer_process_records_nonces_and_refuses_them_without_a_store(tmp_path: Path) -> None:
    import uuid

    from asfaload.auth import NonceClaim
    from asfaload.errors import AuthenticationError, StoreError
    from asfaload.store.nonces import SqliteNonceStore

    path = str(tmp_path / "m.git")
    Mirror.init(path).close()
    db = tmp_path / "nonces.sqlite3"
    claim = NonceClaim(str(uuid.uuid4()), 1_700_000_301, 1_700_000_000)

    # Started without the server's nonce store: an operation that carries a nonce is refused,
    # never applied unrecorded.
    def through(writer: WriterProcess) -> Mirror:
        return Mirror.open(path, writer_socket=writer.socket_path, nonces=SqliteNonceStore(db))

    with WriterProcess(path) as writer, through(writer) as m:
        head = m.head()
        with pytest.raises(StoreError, match="no nonce store"):
            m.submit(_ExampleWrite("a", b"1"), nonce=claim)
        assert m.head() == head
    with WriterProcess(path, str(db)) as writer, through(writer) as m:
        m.submit(_ExampleWrite("a", b"1"), nonce=claim)
        head = m.head()
        with pytest.raises(AuthenticationError, match="Replay"):
            m.submit(_ExampleWrite("b", b"2"), nonce=claim)
        assert m.head() == head
    # The claim is in the server's store, where a worker would look for it.
    assert not SqliteNonceStore(db).remember(claim.nonce, claim.expires_at, claim.now)


@pytest.mark.parametrize("objects", ["fast", "libgit2"])
def test_the_writer_process_writes_through_the_object_store_it_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, objects: str
) -> None:
    """The server's objects setting reaches its writer process: the fast store adds a pack per
    batch, the libgit2 one loose objects."""
    monkeypatch.delenv("ASFALOAD_OBJECTS", raising=False)
    path = str(tmp_path / "m.git")
    Mirror.init(path).close()

    def loose() -> int:
        out = subprocess.run(
            ["git", "count-objects", "-v"], cwd=path, check=True, capture_output=True, text=True
        ).stdout
        return int(next(x for x in out.splitlines() if x.startswith("count:")).split()[1])

    packs, loose_before = pack_names(path), loose()
    with WriterProcess(path, objects=objects) as writer:
        client = RemoteWriter(writer.socket_path)
        client.submit_pickled(_pickled_write("x/y", b"1"))
        client.close()
    if objects == "fast":
        assert len(pack_names(path)) == len(packs) + 1 and loose() == loose_before
    else:
        assert pack_names(path) == packs and loose() > loose_before
    assert Mirror.open(path).view().read("x/y") == b"1"
