"""The operations the rules engine knows: plain frozen dataclasses, validated on construction.

Every operation is also an :data:`~asfaload.rules.tree.Operation` (``op(view, now) -> Change``),
so the store can run it directly: ``mirror.submit(AddSignatures(...))``. Its ``transition`` is
the engine's function for it (:mod:`.engine`, which reads operations but never imports this
module at run time); :func:`~asfaload.rules.engine.apply` is the one way to run it.

=================  =====================================================  ==============
operation          what it does                                           doors
=================  =====================================================  ==============
Register           create ``P/asfaload.signers.pending/`` + history        server only
ProposeUpdate      create a pending signers update for a registered P     server only
RegisterRelease    write a release index and its empty pending request    server only
AddSignatures      one key's signatures for one pending request, plus     server + push
                   the completion transition they trigger
Revoke             initiate (and, at threshold 1, finalise) a revocation  server + push
=================  =====================================================  ==============
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

from ..crypto import PublicKey, Signature
from ..errors import FormatError
from ..layout import check_path, check_project_id
from . import engine

if TYPE_CHECKING:
    from .tree import Change, TreeView


def _check_key(value: object, what: str = "submitter") -> None:
    if not isinstance(value, PublicKey):
        raise FormatError(f"{what} must be a PublicKey, got {type(value).__name__}")


def _check_bytes(value: object, what: str) -> None:
    if not isinstance(value, bytes):
        raise FormatError(f"{what} must be bytes, got {type(value).__name__}")


class _Op:
    """Mixin: an operation is callable as the store's ``Operation``."""

    def __call__(self, view: TreeView, now: int) -> Change:
        return engine.apply(view, self, now)  # type: ignore[arg-type]


@dataclass(frozen=True)
class _SignersRequest(_Op):
    """A signers file and its metadata (raw bytes) proposed for ``project_id``. Not an operation
    itself: the engine tells :class:`Register` and :class:`ProposeUpdate` apart by type."""

    project_id: str
    signers: bytes
    metadata: bytes
    submitter: PublicKey

    def __post_init__(self) -> None:
        check_project_id(self.project_id)
        _check_bytes(self.signers, "signers")
        _check_bytes(self.metadata, "metadata")
        _check_key(self.submitter)


@dataclass(frozen=True)
class Register(_SignersRequest):
    """Register project ``project_id`` with the signers file and its metadata (raw bytes).

    The submitter must be listed in the new signers file. Nothing is signed yet: every listed
    key (revocation keys included) then signs both files with :class:`AddSignatures`.
    """

    def transition(self, view: TreeView, now: int) -> Change:
        return engine.derive_register(view, self)


@dataclass(frozen=True)
class ProposeUpdate(_SignersRequest):
    """Propose a new signers file (raw bytes + metadata) for an active project.

    The submitter must be an admin or master of the CURRENT signers file.
    """

    def transition(self, view: TreeView, now: int) -> Change:
        return engine.derive_propose_update(view, self)


@dataclass(frozen=True)
class RegisterRelease(_Op):
    """Store a release index at ``index_path`` (``…/asfaload.index.json``) and open its request."""

    index_path: str
    index: bytes
    submitter: PublicKey

    def __post_init__(self) -> None:
        check_path(self.index_path)
        _check_bytes(self.index, "index")
        _check_key(self.submitter)

    def transition(self, view: TreeView, now: int) -> Change:
        return engine.derive_register_release(view, self)


@dataclass(frozen=True)
class AddSignatures(_Op):
    """``submitter``'s signatures for the pending request of ``subject``.

    ``subject`` is the file being signed: a release index, a pending signers file
    (``P/asfaload.signers.pending/asfaload.signers.json``) or a pending revocation
    (``A.revocation.json.pending``). ``signatures`` maps every file of the request to the
    submitter's signature over SHA-512 of that file's stored bytes: for a signers file, the
    signers file AND its metadata; otherwise just the subject.
    """

    subject: str
    submitter: PublicKey
    signatures: Mapping[str, Signature] = field(hash=False)

    def __post_init__(self) -> None:
        check_path(self.subject)
        _check_key(self.submitter)
        if not isinstance(self.signatures, Mapping):
            raise FormatError("signatures must be a mapping of path to Signature")
        sigs = dict(self.signatures)
        for path, sig in sigs.items():
            check_path(path)
            if not isinstance(sig, Signature):
                raise FormatError(f"signature for {path} must be a Signature")
        object.__setattr__(self, "signatures", MappingProxyType(sigs))

    def __reduce__(
        self,
    ) -> tuple[type[AddSignatures], tuple[str, PublicKey, dict[str, Signature]]]:
        # Through the constructor (a mappingproxy does not pickle, and the checks run again):
        # operations cross from the server's workers to its writer process.
        return (AddSignatures, (self.subject, self.submitter, dict(self.signatures)))

    def transition(self, view: TreeView, now: int) -> Change:
        return engine.derive_add_signatures(view, self, now)


@dataclass(frozen=True)
class Revoke(_Op):
    """Initiate the revocation of the fully signed file ``subject``.

    ``document`` is the exact revocation JSON (``subject_digest``, ``initiator``, ``timestamp``);
    ``signature`` is the submitter's signature over its SHA-512. The initiator must be the
    submitter, the digest must be the subject's, and the submitter a revocation key.
    """

    subject: str
    document: bytes
    signature: Signature
    submitter: PublicKey

    def __post_init__(self) -> None:
        check_path(self.subject)
        _check_bytes(self.document, "document")
        if not isinstance(self.signature, Signature):
            raise FormatError("signature must be a Signature")
        _check_key(self.submitter)

    def transition(self, view: TreeView, now: int) -> Change:
        return engine.derive_revoke(view, self, now)


Op = Register | ProposeUpdate | RegisterRelease | AddSignatures | Revoke
