"""TUF commits of the mirror, checked for what a TUF client relies on.

Their online roles are signed with the server's private keys, so replay cannot re-derive them
as it does every other commit. It checks instead that published metadata is never rewritten
or deleted (only the pending root draft goes away), that every new root follows its
predecessor's version and is signed by its predecessor's and its own thresholds, and that every
online role verifies against the root in force.
"""

from __future__ import annotations

import re
from typing import Any

from .. import layout
from ..errors import CommitRefused
from ..rules.tree import Change, TreeView

_VERSIONED_RE = re.compile(r"^([1-9][0-9]{0,9})\.(root|targets|snapshot)\.json$")
_TUF_PREFIX = layout.TUF_DIR + "/"


def is_tuf_change(change: Change) -> bool:
    """Whether ``change`` touches the TUF tree (a TUF commit touches nothing else)."""
    return any(p.startswith(_TUF_PREFIX) for p in change.paths)


def _root_versions(view: TreeView, app_dir: str) -> list[int]:
    out = []
    for name in view.listdir(app_dir):
        m = _VERSIONED_RE.match(name)
        if m and m.group(2) == "root":
            out.append(int(m.group(1)))
    return sorted(out)


def check_tuf_change(before: TreeView, change: Change) -> None:
    """Refuse ``change`` unless it publishes TUF metadata of one app as a TUF client needs it."""
    from ..tuf._api import Metadata, Root

    apps = {layout.parent(p) for p in change.paths}
    if (
        any(not p.startswith(_TUF_PREFIX) or p.count("/") != 3 for p in change.paths)
        or len(apps) != 1
    ):
        raise CommitRefused("a TUF commit changes the files of exactly one TUF app, nothing else")
    (app_dir,) = apps
    for p in sorted(change.deletes):
        if layout.basename(p) != layout.TUF_PENDING_ROOT_FILE:
            raise CommitRefused(f"published TUF metadata is never deleted: {p}")
    new_roots: list[tuple[int, str]] = []
    online: list[tuple[str, str]] = []
    for p in sorted(change.writes):
        name = layout.basename(p)
        if name == layout.TUF_PENDING_ROOT_FILE:
            continue  # a draft: the TUF rules check it when it is signed and published
        m = _VERSIONED_RE.match(name)
        if m is None and name != layout.TUF_TIMESTAMP_FILE:
            raise CommitRefused(f"unexpected file in a TUF app: {p}")
        if m is not None and before.read(p) is not None:
            raise CommitRefused(f"published TUF metadata is never rewritten: {p}")
        if m is not None and m.group(2) == "root":
            new_roots.append((int(m.group(1)), p))
        else:
            online.append((m.group(2) if m is not None else "timestamp", p))
    try:
        previous: Any = None
        existing = _root_versions(before, app_dir)
        if existing:
            raw = before.read(layout.join(app_dir, f"{existing[-1]}.root.json"))
            assert raw is not None
            previous = Metadata[Root].from_bytes(raw).signed
        for version, p in sorted(new_roots):
            if previous is not None and version != previous.version + 1:
                raise CommitRefused(f"{p}: root versions must follow {previous.version}")
            md = Metadata[Root].from_bytes(change.writes[p])
            if not isinstance(md.signed, Root):
                raise CommitRefused(f"{p} does not hold root metadata")
            if md.signed.version != version:
                raise CommitRefused(f"{p} holds root version {md.signed.version}")
            result = md.signed.get_root_verification_result(
                previous, md.signed_bytes, md.signatures
            )
            if not result.verified:
                raise CommitRefused(f"{p} is not signed by the root thresholds it needs")
            previous = md.signed
        if online:
            if previous is None:
                raise CommitRefused("TUF online metadata published before any root")
            for role, p in online:
                omd: Any = Metadata.from_bytes(change.writes[p])
                if omd.signed.type != role:
                    raise CommitRefused(f"{p} holds {omd.signed.type!r} metadata")
                previous.verify_delegate(role, omd.signed_bytes, omd.signatures)
    except CommitRefused:
        raise
    except Exception as e:  # python-tuf's parse and verification errors
        raise CommitRefused(f"invalid TUF metadata: {' '.join(str(e).split())}") from None
