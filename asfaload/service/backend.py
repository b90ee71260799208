"""The backend's use-cases: forge + rules + store, independent of HTTP.

Reads come from the mirror tree at the current tip (and the store's pending index); writes are
operations submitted to the mirror's single writer, which runs the pure rules engine against
the tip and commits the exact change it derives.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from .. import layout
from ..crypto import PublicKey
from ..errors import AsfaloadError, FormatError, KeyFormatError, NotFoundError
from ..rules.tree import TreeView
from ..store import Mirror


@dataclass(frozen=True)
class RegistrationResult:
    project_id: str
    required_signers: tuple[str, ...]


def clean_path(path: str) -> str:
    """A request path as a clean mirror path, or 400 ``Invalid file path: …``."""
    if not path:
        raise FormatError("Invalid file path: File path cannot be empty")
    try:
        return layout.check_path(path)
    except FormatError:
        raise FormatError(f"Invalid file path: {path!r}") from None


def parse_key(text: str) -> PublicKey:
    try:
        return PublicKey.parse(text)
    except AsfaloadError as exc:
        raise KeyFormatError(f"Invalid public key format: {exc}") from exc


def governing_signers_path(view: TreeView, path: str) -> str | None:
    """The active signers file nearest above ``path`` (``path`` itself may be a project dir)."""
    for d in [path, *layout.ancestors(path)]:
        if not d:
            continue
        candidate = layout.join(d, layout.SIGNERS_DIR, layout.SIGNERS_FILE)
        if view.read(candidate) is not None:
            return candidate
    return None


class Backend:
    def __init__(self, mirror: Mirror, *, gitlab_hosts: Collection[str] = ()) -> None:
        self.mirror = mirror
        self.gitlab_hosts = tuple(gitlab_hosts)

    @classmethod
    def from_config(cls, mirror: Mirror, config: object) -> Backend:
        return cls(mirror, gitlab_hosts=getattr(config, "gitlab_hosts", ()))

    @staticmethod
    def parse_key(text: str) -> PublicKey:
        return parse_key(text)

    # --- public reads -------------------------------------------------------------------------
    def read_file(self, path: str) -> bytes:
        p = clean_path(path)
        view = self.mirror.view()
        data = view.read(p)
        if data is None:
            if view.is_dir(p):
                raise FormatError(f"Invalid file path: Path is not a file: {p}")
            raise NotFoundError(f"File not found: {p}")
        return data

    def get_signers(self, path: str) -> bytes:
        p = clean_path(path)
        view = self.mirror.view()
        found = governing_signers_path(view, p)
        data = view.read(found) if found else None
        if data is None:
            raise NotFoundError(
                f"No signers file found for: {p}. Error: No signers file found in parent directories"
            )
        return data

    # --- not wired yet: waiting for the rules engine (replaced as its modules land) ------------
    def _todo(self) -> AsfaloadError:
        err = AsfaloadError("Not implemented yet")
        err.http_status = 501
        return err

    def register_repo(self, url: str, public_key: str, caller: PublicKey) -> RegistrationResult:
        raise self._todo()

    def update_signers(self, url: str, public_key: str, caller: PublicKey) -> RegistrationResult:
        raise self._todo()

    def add_signatures(
        self, file_path: str, caller: PublicKey, signatures: Mapping[str, str]
    ) -> bool:
        raise self._todo()

    def signature_status(self, path: str, caller: PublicKey) -> tuple[str, bool]:
        p = clean_path(path)
        if self.mirror.view().read(p) is None:
            raise NotFoundError(f"File not found: {p}")
        raise self._todo()

    def pending_for(self, caller: PublicKey) -> list[str]:
        raise self._todo()

    def files_to_sign(self, path: str, caller: PublicKey) -> dict[str, bytes]:
        raise self._todo()

    def signers_chain(self, path: str) -> dict[str, object]:
        raise self._todo()

    def revoke(
        self, file_path: str, revocation_json: str, signature: str, caller: PublicKey
    ) -> None:
        raise self._todo()

    def register_checksum_files(self, urls: list[str], caller: PublicKey) -> str:
        raise self._todo()

    def register_release(self, url: str, caller: PublicKey, forge: str) -> str:
        raise self._todo()
