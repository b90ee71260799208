"""How a mirror's writer behaves: one set of settings, given once, from the facade down."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypedDict

from .objects import check_objects, objects_setting


def system_clock() -> int:
    return int(time.time())


@dataclass(frozen=True)
class WriterSettings:
    """``clock``: committer times (never earlier than the parent's). ``durable``: a batch is
    acknowledged only after its barrier (off only where a crash cannot matter: tests, benches).
    ``server_info``: keep the dumb-HTTP files up to date. ``stale_lock_seconds``: a
    ``refs/heads/main.lock`` older than this was left by a killed process and is removed.
    ``fold_in_child``: folds written in Python run in a child process (for a process whose one
    thread writes). ``objects``: the object store (:mod:`.objects`; default from
    ``ASFALOAD_OBJECTS``). ``max_batch``: operations per batch. ``repack_fan_in``: batches
    between two folds."""

    clock: Callable[[], int] = system_clock
    durable: bool = True
    server_info: bool = True
    stale_lock_seconds: float = 10.0
    fold_in_child: bool = False
    objects: str = field(default_factory=objects_setting)
    max_batch: int = 256
    repack_fan_in: int = 16

    def __post_init__(self) -> None:
        check_objects(self.objects)


class WriterOptions(TypedDict, total=False):
    """:class:`WriterSettings` as keyword arguments (``Mirror.open(path, durable=False)``)."""

    clock: Callable[[], int]
    durable: bool
    server_info: bool
    stale_lock_seconds: float
    fold_in_child: bool
    objects: str
    max_batch: int
    repack_fan_in: int
