"""The dumb-HTTP files (``info/refs``, ``objects/info/packs``), written as ``git
update-server-info`` writes them, without its subprocess."""

from __future__ import annotations

import os
import threading

import pygit2

from ...durable import WriterLock, lock_path_for


def pack_names(repo_path: str) -> list[str]:
    """The packs a reader can use (those with an index), sorted."""
    pack_dir = os.path.join(repo_path, "objects", "pack")
    try:
        names = os.listdir(pack_dir)
    except FileNotFoundError:
        return []
    return sorted(
        n[: -len(".idx")] + ".pack"
        for n in names
        if n.startswith("pack-") and n.endswith(".idx") and n[: -len(".idx")] + ".pack" in names
    )


def refresh_pack_list(repo_path: str) -> None:
    """:func:`write_info_packs` under the dumb-HTTP files' lock (after a fold changed the
    packs, in whichever process folded)."""
    with WriterLock(lock_path_for(repo_path, "info")):
        write_info_packs(repo_path)


def write_info_packs(repo_path: str) -> None:
    """Rewrite ``objects/info/packs`` (the dumb-HTTP pack list) as ``git update-server-info``
    would, without a subprocess."""
    info = os.path.join(repo_path, "objects", "info")
    os.makedirs(info, exist_ok=True)
    text = "".join(f"P {name}\n" for name in pack_names(repo_path)) + "\n"
    tmp = os.path.join(info, f".packs-{os.getpid()}-{threading.get_ident()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, os.path.join(info, "packs"))


def write_info_refs(repo: pygit2.Repository, repo_path: str) -> bool:
    """Rewrite ``info/refs`` (the dumb-HTTP ref list) as ``git update-server-info`` would, without
    a subprocess; False (nothing written) when a ref needs git's own handling (a symbolic ref,
    or one naming something other than a commit, e.g. an annotated tag to peel).

    The other file git refreshes, ``objects/info/packs``, is :func:`write_info_packs`.
    """
    lines = []
    for name in sorted(repo.references):
        if not name.startswith("refs/"):
            continue
        ref = repo.references[name]
        if ref.type != pygit2.enums.ReferenceType.DIRECT:
            return False
        if repo[ref.target].type != pygit2.enums.ObjectType.COMMIT:
            return False
        lines.append(f"{ref.target}\t{name}\n")
    info = os.path.join(repo_path, "info")
    os.makedirs(info, exist_ok=True)
    tmp = os.path.join(info, f".refs-{os.getpid()}-{threading.get_ident()}")
    # Readable by the web server like git's own file; atomic replace, so readers never see half.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write("".join(lines))
    os.replace(tmp, os.path.join(info, "refs"))
    return True
