"""When each role's published metadata expires, and when the server re-signs the online ones.

Pure: everything is read from a mirror tree (the ``expires`` of the files clients fetch now),
so what is due survives a restart and is the same in every process. The server re-signs an
online role once less than its margin is left: the configured margin (``RefreshPolicy.margin``),
or half the role's lifetime when that is shorter, so that a short-lived role is never due again
right after it was signed. Re-signing goes through :func:`asfaload.tuf.repo.refresh_online`,
which always re-signs snapshot and timestamp and re-signs targets only when asked: a due
timestamp or snapshot re-signs both, a due targets re-signs all three. The root is signed
offline by its key holders; it is shown, never re-signed here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from tuf.api.serialization import DeserializationError

from .. import layout
from ..errors import AsfaloadError, FormatError
from ..rules.tree import TreeView
from ._api import Metadata
from .documents import ONLINE_ROLES, AppRef, Expirations, tuf_time, utc
from .repo import latest_version

ROLES = ("root", "targets", "snapshot", "timestamp")
DAY = 86400


@dataclass(frozen=True)
class RefreshPolicy:
    """How the server keeps online metadata fresh.

    ``margin``: seconds before expiry at which an online role is re-signed (capped at half its
    lifetime). ``interval``: the longest the scheduler sleeps between two looks at the mirror
    (it also wakes when the next role falls due); 0 turns the scheduler off.
    """

    margin: int
    interval: int

    def __post_init__(self) -> None:
        if self.margin < 1:
            raise ValueError(f"refresh margin must be at least 1 second, got {self.margin}")
        if self.interval < 0:
            raise ValueError(f"refresh interval must not be negative, got {self.interval}")

    @property
    def enabled(self) -> bool:
        return self.interval > 0

    def margin_for(self, lifetime_days: int) -> int:
        return min(self.margin, lifetime_days * DAY // 2)

    def to_dict(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "margin": self.margin, "interval": self.interval}


@dataclass(frozen=True)
class RoleExpiry:
    """One role's published metadata: its version, its expiry, and when it is re-signed.

    ``refresh_at`` is None for the root (offline) and when this server does not re-sign (the
    scheduler is off, or the mirror is read-only). It may lie in the past: a refresh that keeps
    failing (an expired root, a missing online key) is retried, and logged, until it succeeds.
    """

    role: str
    version: int
    expires: int
    refresh_at: int | None

    @property
    def online(self) -> bool:
        return self.role in ONLINE_ROLES

    def expired(self, now: int) -> bool:
        # python-tuf's rule: metadata is expired once ``now >= expires``.
        return now >= self.expires

    def to_dict(self, now: int) -> dict[str, Any]:
        return {
            "role": self.role,
            "version": self.version,
            "expires": tuf_time(utc(self.expires)),
            "expired": self.expired(now),
            "online": self.online,
            "refresh_at": None if self.refresh_at is None else tuf_time(utc(self.refresh_at)),
        }


def _published(view: TreeView, ref: AppRef, role: str) -> tuple[int, int] | None:
    """``(version, expires)`` of the role's current file, None if there is none."""
    if role == "timestamp":
        path = ref.timestamp
    else:
        version = latest_version(view, ref, role)
        if version is None:
            return None
        path = ref.versioned(role, version)
    raw = view.read(path)
    if raw is None:
        return None
    try:
        signed = Metadata.from_bytes(raw).signed
    except DeserializationError:
        raise FormatError(f"{path} is not readable TUF metadata") from None
    return signed.version, int(signed.expires.timestamp())


def due_times(
    view: TreeView, ref: AppRef, expirations: Expirations, policy: RefreshPolicy
) -> dict[str, int]:
    """Online role -> the time it falls due: its expiry less its margin."""
    out: dict[str, int] = {}
    for role in ONLINE_ROLES:
        found = _published(view, ref, role)
        if found is not None:
            out[role] = found[1] - policy.margin_for(expirations.days(role))
    return out


def due_roles(
    view: TreeView, ref: AppRef, expirations: Expirations, policy: RefreshPolicy, now: int
) -> list[str]:
    """The online roles to re-sign at ``now`` (in ``ONLINE_ROLES`` order), [] when none is due."""
    due = due_times(view, ref, expirations, policy)
    return [role for role in ONLINE_ROLES if role in due and due[role] <= now]


def next_refresh(
    view: TreeView, ref: AppRef, expirations: Expirations, policy: RefreshPolicy
) -> int | None:
    """When the next refresh of this app falls due, None if nothing is published."""
    due = due_times(view, ref, expirations, policy)
    return min(due.values()) if due else None


def expiries(
    view: TreeView, ref: AppRef, expirations: Expirations, policy: RefreshPolicy | None
) -> list[RoleExpiry]:
    """Every published role of the app, root first; ``policy`` None: no role is re-signed here."""
    due = {} if policy is None else due_times(view, ref, expirations, policy)
    # Any refresh re-signs snapshot and timestamp; only a due targets re-signs targets.
    first = min(due.values()) if due else None
    out: list[RoleExpiry] = []
    for role in ROLES:
        found = _published(view, ref, role)
        if found is None:
            continue
        if role == "root" or policy is None:
            refresh_at = None
        elif role == "targets":
            refresh_at = due.get("targets")
        else:
            refresh_at = first
        out.append(RoleExpiry(role, found[0], found[1], refresh_at))
    return out


def apps(view: TreeView) -> Iterator[AppRef]:
    """Every bootstrapped TUF app of the mirror (``tuf/<admin>/<app>/`` holding a root)."""
    for admin in view.listdir(layout.TUF_DIR):
        for app in view.listdir(layout.join(layout.TUF_DIR, admin)):
            try:
                ref = AppRef(admin, app)
            except AsfaloadError:  # a name the TUF service refuses was not written by it
                continue
            if latest_version(view, ref, "root") is not None:
                yield ref
