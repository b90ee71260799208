"""Where a mirror's writes go: this process's own writer, or the server's writer process.

The front picks one per operation and records a request's nonce on the path the operation
takes: the writer process records the nonces of a batch itself (:mod:`.writer_process`); an
operation written here has its nonce recorded here, before it is applied.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Sequence
from concurrent.futures import Future

from ..auth import NonceClaim
from ..errors import StoreError
from ..rules.tree import Operation
from . import writer_link
from .nonces import SqliteNonceStore
from .settings import WriterSettings
from .writer import BatchWriter, CommitResult
from .writer_link import RemoteWriter

log = logging.getLogger(__name__)


class MirrorWriter:
    """The writes of one mirror from this process."""

    def __init__(
        self,
        path: str,
        lock_path: str,
        settings: WriterSettings,
        *,
        writer_socket: str | None = None,
        nonces: SqliteNonceStore | None = None,
        on_publish: Callable[[str], None] | None = None,
    ) -> None:
        # A server's workers write through its writer process (asfaload.store.writer_process).
        self._remote = RemoteWriter(writer_socket) if writer_socket else None
        # Where submit() records a nonce claim when it writes in this process.
        self._nonces = nonces
        self._local = BatchWriter(path, lock_path, settings, on_publish=on_publish)

    @property
    def local(self) -> BatchWriter:
        """This process's own writer."""
        return self._local

    @property
    def claims_nonces(self) -> bool:
        """:meth:`submit` can record a request's nonce with its operation."""
        return self._nonces is not None

    def submit_async(self, op: Operation) -> Future[CommitResult]:
        return self._local.submit(op)

    def submit(
        self,
        op: Operation,
        timeout: float | None = None,
        *,
        nonce: NonceClaim | None = None,
        in_process: bool = False,
    ) -> CommitResult:
        """See :meth:`.Mirror.submit`."""
        if nonce is not None and self._nonces is None:
            raise StoreError("This mirror has no nonce store to record the request in")
        if self._remote is not None and not in_process:
            try:
                payload = writer_link.request_payload(op, nonce)
            except (pickle.PicklingError, TypeError, AttributeError) as e:
                # Never a silent detour: an operation that must stay in this process says so.
                raise StoreError(
                    f"{type(op).__name__} cannot be sent to the writer process"
                    " (submit it with in_process=True if it must be applied here)"
                ) from e
            try:
                return self._remote.submit_pickled(payload)
            except writer_link.WriterUnreachable:
                log.warning("the mirror writer process is unreachable; writing in-process")
        if nonce is not None:
            assert self._nonces is not None
            self._nonces.claim(nonce)
        return self._local.submit(op).result(timeout)

    def write_batch(self, ops: Sequence[Operation]) -> list[CommitResult | Exception]:
        return self._local.write_batch(ops)

    @property
    def server_info_pending(self) -> bool:
        return self._local.server_info_pending

    def publish_server_info(self) -> None:
        self._local.publish_server_info()

    def close(self) -> None:
        if self._remote is not None:
            self._remote.close()
        self._local.close()
