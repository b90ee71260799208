"""TUF use-cases: the pure operations of :mod:`.repo` run through the mirror's single writer,
with the private parts (online keys, settings, task records) around them.

Each write is one ``mirror.submit(op)``: the op reads the draft and the published metadata from
the tip it is given, so concurrent requests are serialised by the writer and never lose a
signature. Task records are written after the commit is acknowledged.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from ..errors import TASK_NOT_ACCEPTED, TufError
from ..rules.tree import Change, TreeView
from . import expiry, repo
from .accounts import Accounts
from .documents import ONLINE_ROLES, AppRef, Expirations, load_json
from .expiry import RefreshPolicy
from .files import private_dirs, tuf_private_dir, write_private
from .online import OnlineKeyring
from .repo import NothingToCommit, Progress, RootOutcome
from .tasks import TaskStore


class MirrorLike(Protocol):
    """What we need of :class:`asfaload.store.Mirror`."""

    def head(self) -> str | None: ...

    def view(self, commit: str | None = None) -> TreeView: ...

    def submit(
        self,
        op: Callable[[TreeView, int], Change],
        timeout: float | None = None,
        *,
        in_process: bool = False,
    ) -> Any: ...


@dataclass(frozen=True)
class Done:
    """A write's answer: its task id, when it was processed, and what it did."""

    task_id: str
    last_update: str
    published: bool = False
    progress: Progress | None = None
    details: dict[str, Any] | None = None

    def data(self) -> dict[str, Any]:
        out: dict[str, Any] = {"task_id": self.task_id, "last_update": self.last_update}
        if self.progress is not None:
            out["published"] = self.published
            out["version"] = self.progress.version
            out["progress"] = self.progress.to_dict()
        if self.details:
            out.update(self.details)
        return out


class TufService:
    def __init__(self, mirror: MirrorLike, private_dir: Path) -> None:
        self.mirror = mirror
        self.private_dir = Path(private_dir)
        self.keyring = OnlineKeyring(self.private_dir)
        self.accounts = Accounts(self.private_dir)
        self.tasks = TaskStore(self.private_dir)

    # --- settings (private, per app) -------------------------------------------------------------
    def _settings_path(self, ref: AppRef) -> Path:
        return tuf_private_dir(self.private_dir) / "apps" / ref.admin / ref.app / "settings.json"

    def settings(self, ref: AppRef) -> dict[str, Any]:
        try:
            data = json.loads(self._settings_path(ref).read_text())
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def expirations(self, ref: AppRef) -> Expirations:
        return Expirations.from_dict(self.settings(ref).get("expirations"))

    def _save_settings(self, ref: AppRef, data: dict[str, Any]) -> None:
        path = self._settings_path(ref)
        private_dirs(path.parent, self.private_dir)
        write_private(path, json.dumps(data, indent=2).encode() + b"\n")

    # --- running an operation ---------------------------------------------------------------------
    def _run(self, fn: Callable[[TreeView, int], RootOutcome]) -> RootOutcome:
        box: list[RootOutcome] = []

        def op(view: TreeView, now: int) -> Change:
            out = fn(view, now)
            box[:] = [out]  # the writer may re-run us after a lost race; keep the last
            return out.change

        # In this process: the operation holds the online signing keys, which never cross to
        # the writer process.
        self.mirror.submit(op, in_process=True)
        return box[-1]

    # --- reads ---------------------------------------------------------------------------------------
    def is_bootstrapped(self, ref: AppRef) -> bool:
        return repo.is_bootstrapped(self.mirror.view(), ref)

    def bootstrap_status(self, ref: AppRef) -> dict[str, Any]:
        done = self.is_bootstrapped(ref)
        task_id = str(self.settings(ref).get("bootstrap_task", "")) if done else ""
        return {
            "bootstrap": done,
            "state": None,
            "id": task_id,
            "redis_locks": {"bootstrap_lock": task_id, "pre_locks": []},
        }

    def pending(self, ref: AppRef, now: int) -> dict[str, Any] | None:
        view = self.mirror.view()
        if not repo.is_bootstrapped(view, ref):
            raise TufError(
                "Requires bootstrap started. State: ",
                status=404,
                message="No metadata pending signing available",
            )
        draft = repo.pending_root(view, ref)
        if draft is None:
            return None
        metadata: dict[str, Any] = {"root": draft}
        trusted = repo.verified_trusted_root(view, ref, now)
        if trusted is not None:
            metadata["trusted_root"] = trusted.doc
        out: dict[str, Any] = {"metadata": metadata}
        progress = repo.draft_progress(view, ref, now)
        if progress is not None:
            out["progress"] = progress.to_dict()
        return out

    def trusted_root(self, ref: AppRef, now: int) -> dict[str, Any] | None:
        trusted = repo.verified_trusted_root(self.mirror.view(), ref, now)
        return trusted.doc if trusted is not None else None

    # --- writes -------------------------------------------------------------------------------------
    def bootstrap(self, ref: AppRef, root_doc: Any, expirations: Expirations) -> Done:
        self.keyring.ensure()
        keys = self.keyring.signers()
        self._run(lambda v, now: repo.bootstrap(v, now, ref, root_doc, expirations, keys))
        tid = self.tasks.record(ref, "bootstrap", "SUCCESS", "Bootstrap completed successfully")
        self._save_settings(ref, {"expirations": expirations.to_dict(), "bootstrap_task": tid})
        return Done(tid, _now())

    def rotate(self, ref: AppRef, root_doc: Any) -> Done:
        keys = self.keyring.signers()
        exp = self.expirations(ref)
        out = self._run(lambda v, now: repo.propose_root(v, now, ref, root_doc, exp, keys))
        self._retire_draft_task(ref, "superseded by a new root proposal")
        if out.published:
            tid = self.tasks.record(
                ref, "metadata_update", "SUCCESS", "Metadata update completed successfully"
            )
        else:
            tid = self.tasks.record(
                ref, "metadata_update", "PENDING", f"Root v{out.version} is pending signatures"
            )
            self.tasks.set_draft_task(ref, tid)
        return Done(tid, _now(), out.published, out.progress)

    def sign(self, ref: AppRef, role: str, keyid: str, sig: str) -> Done:
        keys = self.keyring.signers()
        exp = self.expirations(ref)
        try:
            out = self._run(
                lambda v, now: repo.add_signature(v, now, ref, role, keyid, sig, exp, keys)
            )
        except NothingToCommit as same:
            tid = self.tasks.draft_task(ref) or self.tasks.record(
                ref,
                "sign_metadata",
                "PENDING",
                f"Root v{same.progress.version} is pending signatures",
            )
            return Done(tid, _now(), False, same.progress)
        draft_tid = self.tasks.draft_task(ref)
        if out.published:
            tid = self.tasks.record(
                ref, "sign_metadata", "SUCCESS", "Metadata update finished", task_id=draft_tid
            )
            self.tasks.set_draft_task(ref, None)
        else:
            tid = self.tasks.record(
                ref,
                "sign_metadata",
                "PENDING",
                f"Root v{out.version} is pending signatures",
                task_id=draft_tid,
                details={"progress": out.progress.summary()},
            )
            self.tasks.set_draft_task(ref, tid)
        return Done(tid, _now(), out.published, out.progress)

    def delete_draft(self, ref: AppRef, role: str) -> Done:
        def fn(v: TreeView, now: int) -> RootOutcome:
            change = repo.delete_draft(v, ref, role)
            return RootOutcome(change, Progress(0, 0, _EMPTY, _EMPTY), published=False)

        self._run(fn)
        self._retire_draft_task(ref, "signing process stopped")
        tid = self.tasks.record(
            ref,
            "delete_sign_metadata",
            "SUCCESS",
            f"Deletion of {role} metadata successful, signing process stopped",
        )
        return Done(tid, _now())

    def refresh_online(self, ref: AppRef, roles: Iterable[str]) -> Done:
        requested = list(roles) or list(ONLINE_ROLES)
        if "root" in requested:
            raise TufError("Root role cannot be updated via this endpoint")
        for r in requested:
            if r not in ONLINE_ROLES:
                raise TufError(f'unknown online role "{r}"')
        if not self.is_bootstrapped(ref):
            raise TufError(
                "Requires bootstrap finished. State: ", status=404, message=TASK_NOT_ACCEPTED
            )
        updated = self._resign(ref, lambda view, now, exp: requested)
        assert updated is not None
        tid = self.tasks.record(
            ref,
            "force_online_metadata_update",
            "SUCCESS",
            "Force new online metadata update succeeded",
            details={"updated_roles": updated},
        )
        return Done(tid, _now())

    def refresh_due(self, ref: AppRef, policy: RefreshPolicy) -> list[str]:
        """Re-sign the app's online roles that are due under ``policy``; the roles re-signed.

        What is due is decided again inside the write, on the tip and at the commit time, so
        a refresh that another process already made is not made twice: [] then, and no commit.
        """
        updated = self._resign(
            ref, lambda view, now, exp: expiry.due_roles(view, ref, exp, policy, now)
        )
        if updated is None:
            return []
        self.tasks.record(
            ref,
            "scheduled_online_metadata_update",
            "SUCCESS",
            "Online metadata re-signed before it expires",
            details={"updated_roles": updated},
        )
        return updated

    def _resign(
        self, ref: AppRef, roles: Callable[[TreeView, int, Expirations], list[str]]
    ) -> list[str] | None:
        """One commit re-signing ``roles(view, now, expirations)``: the roles written, or None
        when that list is empty (nothing is committed)."""
        keys = self.keyring.signers()
        exp = self.expirations(ref)
        updated: list[str] = []

        def fn(v: TreeView, now: int) -> RootOutcome:
            wanted = roles(v, now, exp)
            if not wanted:
                raise _NothingDue
            change, roles_done = repo.refresh_online(v, now, ref, wanted, exp, keys)
            updated[:] = roles_done
            return RootOutcome(change, Progress(0, 0, _EMPTY, _EMPTY), published=False)

        try:
            self._run(fn)
        except _NothingDue:
            return None
        return updated

    def expiries(self, ref: AppRef, policy: RefreshPolicy | None) -> list[expiry.RoleExpiry]:
        """The app's published roles with their expiry and when this server re-signs them."""
        view = self.mirror.view()
        if not repo.is_bootstrapped(view, ref):
            raise TufError(
                "Requires bootstrap finished. State: ", status=404, message=TASK_NOT_ACCEPTED
            )
        return expiry.expiries(view, ref, self.expirations(ref), policy)

    def _retire_draft_task(self, ref: AppRef, why: str) -> None:
        old = self.tasks.draft_task(ref)
        if old is not None:
            self.tasks.record(ref, "metadata_update", "REVOKED", why, task_id=old)
            self.tasks.set_draft_task(ref, None)


_EMPTY = repo.Side(0, (), ())


class _NothingDue(Exception):
    """Raised inside a write that finds nothing to re-sign: the store then commits nothing."""


def _now() -> str:
    return datetime.now(UTC).astimezone().isoformat()


def read_json_body(raw: bytes) -> Any:
    return load_json(raw, "request body")
