"""The backend's use-cases: forge + rules + store, independent of HTTP.

Reads come from the mirror tree at the current tip (and the store's pending index); writes are
operations submitted to the mirror's single writer, which runs the pure rules engine against
the tip and commits the exact change it derives.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import layout
from ..auth import NonceClaim
from ..crypto import PublicKey, Signature
from ..errors import (
    AsfaloadError,
    AuthenticationError,
    FormatError,
    KeyFormatError,
    NotAuthorizedError,
    NotFoundError,
    RuleViolation,
    SignatureFormatError,
    StoreError,
)
from ..forge import FetchedFile, ForgeConfig, Forges, ReleaseAssets
from ..model.index import ReleaseIndex
from ..model.metadata import SignersMetadata
from ..rules import queries
from ..rules.engine import (
    check_register_target,
    check_release_target,
    check_update_target,
)
from ..rules.ops import AddSignatures, ProposeUpdate, Register, RegisterRelease, Revoke
from ..rules.status import FileReport, file_report, revocation_status
from ..store import Mirror
from ..store.pending import PendingIndex
from . import reads
from .pending import RulesPendingPolicy
from .projects import ProjectLister, ProjectOverview, project_overview
from .reads import clean_path


@dataclass(frozen=True)
class RegistrationResult:
    project_id: str
    required_signers: tuple[str, ...]


def parse_key(text: str) -> PublicKey:
    try:
        return PublicKey.parse(text)
    except AsfaloadError as exc:
        raise KeyFormatError(f"Invalid public key format: {exc}") from exc


def check_submitter(public_key: str, caller: PublicKey) -> None:
    """A body's ``public_key`` must name the key that signed the request."""
    if parse_key(public_key) != caller:
        raise AuthenticationError(
            "Authentication failed: public_key does not match the X-asfld-pk header"
        )


def _parse_signature(wire: str, key: PublicKey, what: str) -> Signature:
    try:
        return Signature.from_wire(wire, key.algorithm)
    except AsfaloadError as exc:
        raise SignatureFormatError(f"Invalid signature format for {what}: {exc}") from exc


class Backend:
    def __init__(
        self,
        mirror: Mirror,
        pending: PendingIndex,
        forges: Forges,
    ) -> None:
        self.mirror = mirror
        self.pending = pending
        self.forges = forges
        self.gitlab_hosts = forges.config.gitlab_hosts
        self.project_lister = ProjectLister(mirror.path)

    @classmethod
    def create(cls, mirror: Mirror, private_dir: Path, forge_config: ForgeConfig) -> Backend:
        """A backend whose pending index is cached under the server's private dir."""
        index = PendingIndex(
            mirror.path, str(private_dir / layout.PENDING_INDEX_FILE), RulesPendingPolicy()
        )
        return cls(mirror, index, Forges(forge_config))

    @staticmethod
    def parse_key(text: str) -> PublicKey:
        return parse_key(text)

    # --- public reads -------------------------------------------------------------------------
    def read_file(self, path: str) -> bytes:
        return reads.read_file(self.mirror.view(), path)

    def get_signers(self, path: str) -> bytes:
        p = clean_path(path)
        view = self.mirror.view()
        found = queries.governing_signers_path(view, p)
        data = view.read(found) if found else None
        if data is None:
            raise NotFoundError(
                f"No signers file found for: {p}. Error: No signers file found in parent directories"
            )
        return data

    def signers_chain(self, path: str) -> dict[str, Any]:
        """The signers history up to the signers file that governed ``path``
        (:func:`asfaload.service.reads.signers_chain`)."""
        return reads.signers_chain(self.mirror.view(), path)

    def signature_status(self, path: str) -> FileReport:
        """The state of ``path`` and who signed it (public: the mirror shows it to anyone)."""
        p = clean_path(path)
        view = self.mirror.view()
        if view.read(p) is None:
            raise NotFoundError(f"File not found: {p}")
        return file_report(view, p)

    def file_states(self, paths: list[str]) -> list[tuple[str, queries.FileStatus]]:
        """``(path, state)`` for each listed path, all read from one tip. A path that has no
        state there is left out: a listing made a moment earlier (the pending index) may name
        a signers request that has since been activated and moved."""
        view = self.mirror.view()
        out: list[tuple[str, queries.FileStatus]] = []
        for p in paths:
            try:
                out.append((p, queries.file_status(view, p)))
            except AsfaloadError:
                continue
        return out

    def projects(self) -> list[str]:
        """Every registered project id, sorted (see :class:`.ProjectLister` for the cost)."""
        return self.project_lister.projects(self.mirror.head())

    def project(self, project_id: str) -> ProjectOverview:
        """One project: signers, releases and their states, revocations, signers history."""
        return project_overview(self.mirror.view(), project_id)

    # --- authenticated reads ------------------------------------------------------------------
    def pending_for(self, caller: PublicKey) -> list[str]:
        return self.pending.for_signer(str(caller))

    def files_to_sign(self, path: str, caller: PublicKey) -> dict[str, bytes]:
        p = clean_path(path)
        view = self.mirror.view()
        if view.read(p) is None:
            raise NotFoundError(f"File not found: {p}")
        req = queries.pending_request(view, p)
        old, new = queries.request_signers(view, req)
        if caller not in queries.authorised_keys(req.kind, old, new):
            raise NotAuthorizedError("Public key is not an authorized signer for this file")
        out: dict[str, bytes] = {}
        for f in req.files:
            data = view.read(f)
            if data is None:
                raise StoreError(f"Pending request of {p} lacks {f}")
            out[f] = data
        return out

    # --- writes -------------------------------------------------------------------------------
    def add_signatures(
        self,
        file_path: str,
        caller: PublicKey,
        signatures: Mapping[str, str],
        *,
        nonce: NonceClaim | None = None,
    ) -> bool:
        """Add ``caller``'s signatures to the pending request of ``file_path``; True when the
        request completed (the completion transition is part of the same commit).

        Everything is checked by the rules, in the writer, on the tip the commit lands on: a
        missing file is refused there first, with the same message. The mirror is read here
        only when the request itself is malformed, so that a malformed request for a missing
        file is still answered "File not found", as the manual orders the errors; a well-formed
        signature costs this worker no git lookups at all. ``nonce``: the request's, recorded
        with the write (see :meth:`.Mirror.submit`).
        """
        p = clean_path(file_path)
        try:
            parsed: dict[str, Signature] = {}
            for path, wire in signatures.items():
                parsed[clean_path(path)] = _parse_signature(wire, caller, path)
            op = AddSignatures(subject=p, submitter=caller, signatures=parsed)
        except AsfaloadError:
            if self.mirror.view().read(p) is None:
                raise RuleViolation(f"File not found: {p}") from None
            raise
        result = self.mirror.submit(op, nonce=nonce)
        return layout.pending_signatures_path(p) in result.change.deletes

    def revoke(
        self, file_path: str, revocation_json: str, signature: str, caller: PublicKey
    ) -> str:
        """Initiate (or, at a threshold of one, complete) the revocation of ``file_path``; its
        :func:`~asfaload.rules.status.revocation_status`."""
        p = clean_path(file_path)
        if self.mirror.view().read(p) is None:
            raise NotFoundError(f"File not found: {p}")
        sig = _parse_signature(signature, caller, "the revocation document")
        op = Revoke(
            subject=p, document=revocation_json.encode("utf-8"), signature=sig, submitter=caller
        )
        try:
            result = self.mirror.submit(op)
        except NotAuthorizedError as exc:
            # The REST manual answers a key that may not revoke with 400: /v1/revoke has no 403.
            raise RuleViolation(str(exc)) from None
        return revocation_status(p, result.change)

    # --- forge-backed writes -----------------------------------------------------------------

    def _project_id(self, url: str) -> str:
        try:
            return layout.project_id(url, self.forges.detect(url), gitlab_hosts=self.gitlab_hosts)
        except (AsfaloadError, ValueError) as exc:
            raise FormatError(f"Invalid forge URL: {exc}") from exc

    def _metadata(self, fetched: FetchedFile) -> bytes:
        return SignersMetadata.create(
            fetched.metadata_kind,
            fetched.url,
            fetched.retrieval_url,
            content=fetched.raw,
            retrieved_at=int(time.time()),
        ).to_bytes()

    def _pending_result(self, commit_id: str, pid: str) -> RegistrationResult:
        view = self.mirror.view(commit_id)
        subject = layout.signers_file_path(pid, pending=True)
        return RegistrationResult(pid, tuple(queries.required_signers(view, subject)))

    def register_repo(self, url: str, public_key: str, caller: PublicKey) -> RegistrationResult:
        """Fetch the signers file and open its registration request (one commit)."""
        check_submitter(public_key, caller)
        pid = self._project_id(url)
        check_register_target(self.mirror.view(), pid)
        fetched = self.forges.fetch_signers_file(url)
        result = self.mirror.submit(Register(pid, fetched.raw, self._metadata(fetched), caller))
        return self._pending_result(result.commit_id, pid)

    def update_signers(self, url: str, public_key: str, caller: PublicKey) -> RegistrationResult:
        """Fetch a new signers file and propose it for an active project (one commit)."""
        check_submitter(public_key, caller)
        pid = self._project_id(url)
        check_update_target(self.mirror.view(), pid, caller)
        fetched = self.forges.fetch_signers_file(url)
        op = ProposeUpdate(pid, fetched.raw, self._metadata(fetched), caller)
        result = self.mirror.submit(op)
        return self._pending_result(result.commit_id, pid)

    def _check_release_target(self, index_path: str, caller: PublicKey) -> None:
        """The rules' own checks, made before any download so that nobody can make the server
        fetch (and hash) a release for a project they do not sign for."""
        check_release_target(self.mirror.view(), index_path, caller)

    def _register_index(self, index_path: str, assets: ReleaseAssets, caller: PublicKey) -> str:
        index = ReleaseIndex.create(
            assets.published_files(), mirrored_on=int(time.time()), published_on=assets.published_on
        )
        self.mirror.submit(RegisterRelease(index_path, index.to_bytes(), caller))
        return index_path

    def register_release(self, url: str, caller: PublicKey, forge: str) -> str:
        """Index a GitHub or GitLab release page and open its signature request."""
        try:
            kind = self.forges.detect(url)
        except ValueError as exc:
            raise FormatError(f"Invalid release URL format: {exc}") from exc
        if kind != forge:
            name = "GitHub" if forge == "github" else "GitLab"
            raise FormatError(f"Invalid {name} release URL: not a {name} host: {url}")
        try:
            index_path = layout.release_index_path(url, kind, gitlab_hosts=self.gitlab_hosts)
        except (AsfaloadError, ValueError) as exc:
            raise FormatError(f"Invalid release URL format: {exc}") from exc
        self._check_release_target(index_path, caller)
        return self._register_index(index_path, self.forges.fetch_release(url, kind), caller)

    def register_checksum_files(self, urls: list[str], caller: PublicKey) -> str:
        """Index the files listed by checksum files (all beside each other on one origin)."""
        try:
            index_path = layout.checksum_index_path(urls)
        except (AsfaloadError, ValueError) as exc:
            raise FormatError(f"Invalid checksums URLs: {exc}") from exc
        self._check_release_target(index_path, caller)
        return self._register_index(index_path, self.forges.fetch_checksum_files(urls), caller)
