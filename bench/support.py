"""What the benchmarks share: mirrors of valid projects, built fast, and real operations on them.

One template project (active signers, completed and pending releases, made by the rules engine
with real signatures) is copied under many project ids, sharded
``https/github.com/443/<owner>/<repo>`` as the layout places them. Identical subtrees share one
git tree object, so a 100k-file mirror is built in well under a second; every lookup still walks
the real paths.
"""

from __future__ import annotations

import threading
import time

import pygit2
from pygit2.enums import FileMode

from asfaload import layout
from asfaload.crypto import SecretKey, sha512
from asfaload.devtools.server import ServerProcess
from asfaload.model import SignerGroup, SignersFile
from asfaload.model.index import PublishedFile, ReleaseIndex
from asfaload.model.metadata import SignersMetadata
from asfaload.rules import (
    AddSignatures,
    DictTree,
    Register,
    RegisterRelease,
    apply,
    pending_request,
)
from asfaload.rules.ops import Op
from asfaload.store import MAIN, Mirror

T0 = 1_700_000_000


def _index(tag: str) -> bytes:
    url = f"https://github.com/acme/tool/releases/download/{tag}/tool.tgz"
    return ReleaseIndex.create(
        [PublishedFile("tool.tgz", "Sha256", url, sha512(tag.encode()).hex()[:64])],
        mirrored_on=T0,
    ).to_bytes()


def _sign(tree: DictTree, subject: str, sk: SecretKey) -> AddSignatures:
    req = pending_request(tree, subject)
    sigs = {f: sk.sign(sha512(tree.read(f) or b"")) for f in req.files}
    return AddSignatures(subject, sk.public_key, sigs)


def _run(tree: DictTree, op: Op) -> DictTree:
    change = apply(tree, op, T0)
    files = tree.files()
    for p in change.deletes:
        del files[p]
    files.update(change.writes)
    return DictTree(files)


TEMPLATE_ID = "https/github.com/443/template/project"


def template_project(a: SecretKey, b: SecretKey, ad: SecretKey) -> dict[str, bytes]:
    """Files of one active project (relative to its dir): 3 completed releases, 1 pending."""
    group = SignerGroup((a.public_key, b.public_key), 2)
    raw = SignersFile.create(
        artifact_signers=[group],
        admin_keys=[SignerGroup((ad.public_key,), 1)],
        master_keys=None,
        revocation_keys=None,
        timestamp=T0,
    ).raw
    url = "https://github.com/template/project/blob/main/asfaload.signers.json"
    md = SignersMetadata.create(
        "Github",
        url,
        url.replace("github.com", "raw.githubusercontent.com"),
        retrieved_at=T0,
        content=raw,
    ).to_bytes()
    tree = _run(DictTree(), Register(TEMPLATE_ID, raw, md, ad.public_key))
    pending = layout.signers_file_path(TEMPLATE_ID, pending=True)
    for k in (a, b, ad):
        tree = _run(tree, _sign(tree, pending, k))
    for tag in ("v1", "v2", "v3", "v4"):
        x = layout.github_release_index_path(TEMPLATE_ID, tag)
        tree = _run(tree, RegisterRelease(x, _index(tag), a.public_key))
        tree = _run(tree, _sign(tree, x, a))
        if tag != "v4":  # v4 stays pending: the pending index has work in every project
            tree = _run(tree, _sign(tree, x, b))
    prefix = TEMPLATE_ID + "/"
    return {p[len(prefix) :]: d for p, d in tree.files().items()}


def _write_tree(repo: pygit2.Repository, files: dict[str, bytes]) -> pygit2.Oid:
    nested: dict[str, object] = {}
    for path, data in files.items():
        *dirs, name = path.split("/")
        node = nested
        for d in dirs:
            node = node.setdefault(d, {})  # type: ignore[assignment]
        node[name] = data

    def write(node: dict[str, object]) -> pygit2.Oid:
        tb = repo.TreeBuilder()
        for name, value in sorted(node.items()):
            if isinstance(value, bytes):
                tb.insert(name, repo.create_blob(value), FileMode.BLOB)
            else:
                tb.insert(name, write(value), FileMode.TREE)  # type: ignore[arg-type]
        return tb.write()

    return write(nested)


def build_mirror(
    path: str,
    n_files: int,
    filler: dict[str, bytes],
    own: dict[str, bytes],
    *,
    objects: str = "fast",
) -> tuple[Mirror, int, str]:
    """A mirror of about ``n_files`` files: the filler project copied under sharded project ids,
    plus the project the benchmark writes to (``own``, other keys) in the middle; opened with
    the ``objects`` object store."""
    Mirror.init(path, server_info=False).close()
    repo = pygit2.Repository(path)
    project_tree = _write_tree(repo, filler)
    own_tree = _write_tree(repo, own)
    n_projects = max(1, round((n_files - len(own)) / len(filler)))
    per_owner = 64
    host = repo.TreeBuilder()
    owners = (n_projects + per_owner - 1) // per_owner
    made = 0
    for o in range(owners):
        tb = repo.TreeBuilder()
        for r in range(min(per_owner, n_projects - made)):
            tb.insert(f"repo{r:03d}", project_tree, FileMode.TREE)
            made += 1
        if o == owners // 2:
            tb.insert("bench", own_tree, FileMode.TREE)
        host.insert(f"owner{o:04d}", tb.write(), FileMode.TREE)
    root = _nest(repo, ["https", "github.com", "443"], host.write())
    tip = repo.references[MAIN].peel(pygit2.Commit)
    sig = pygit2.Signature("asfaload", "asfaload@localhost", tip.commit_time, 0)
    cid = repo.create_commit(None, sig, sig, "bench: filler projects", root, [tip.id])
    repo.references[MAIN].set_target(cid)
    # the project the benchmark writes to: one of the copies, in the middle of the mirror
    project = f"https/github.com/443/owner{owners // 2:04d}/bench"
    mirror = Mirror.open(path, server_info=False, objects=objects)
    return mirror, made * len(filler) + len(own), project


def _nest(repo: pygit2.Repository, dirs: list[str], leaf: pygit2.Oid) -> pygit2.Oid:
    oid = leaf
    for d in reversed(dirs):
        tb = repo.TreeBuilder()
        tb.insert(d, oid, FileMode.TREE)
        oid = tb.write()
    return oid


class Ops:
    """Fresh release registrations for the bench project (each a real rules operation)."""

    def __init__(self, project: str, key: SecretKey) -> None:
        self.project, self.key, self.n = project, key, 0
        self._lock = threading.Lock()

    def next(self) -> RegisterRelease:
        with self._lock:
            self.n += 1
            tag = f"bench-{self.n}"
        x = layout.github_release_index_path(self.project, tag)
        return RegisterRelease(x, _index(tag), self.key.public_key)


def wait_for_index(server: ServerProcess, count: int) -> None:
    """Each worker builds its pending index in the background after starting, and catches up
    once writes pause; wait until the server has logged ``count`` such catch-ups, so that the
    work lands on neither side of the comparison."""
    deadline = time.monotonic() + 300
    while server.log().count("pending index caught up with main") < count:
        if time.monotonic() > deadline:
            raise RuntimeError("the server's workers did not build their pending index")
        time.sleep(0.2)
