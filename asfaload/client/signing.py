"""What a signer signs: the pending files of a request, and revocation documents.

Everything signed is the 64-byte SHA-512 digest of the exact bytes the backend serves
(``docs/formats.md``). For a signers file the backend returns the file AND its metadata; both are
signed and submitted in one request, as ``POST /v1/signatures`` requires.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..crypto import SecretKey, Signature, sha512
from ..errors import FormatError
from ..model import RevocationDocument

if TYPE_CHECKING:  # annotations only: signing by git must not pay for the HTTP client
    from .api import BackendClient, RevokeResult


# Called with (mirror path, SHA-512 digest) just before that digest is signed: the CLI shows the
# signer what is about to be signed (its visual fingerprint).
BeforeSign = Callable[[str, bytes], None]


def sign_files(
    secret_key: SecretKey, files: dict[str, bytes], before_sign: BeforeSign | None = None
) -> dict[str, Signature]:
    signatures: dict[str, Signature] = {}
    for path, content in files.items():
        digest = sha512(content)
        if before_sign is not None:
            before_sign(path, digest)
        signatures[path] = secret_key.sign(digest)
    return signatures


def sign_pending(
    backend: BackendClient,
    secret_key: SecretKey,
    file_path: str,
    *,
    before_sign: BeforeSign | None = None,
) -> bool:
    """Fetch the files to sign for ``file_path``, sign each, submit; True when now complete."""
    files = backend.files_to_sign(file_path)
    if file_path not in files:
        raise FormatError(f"The backend did not return {file_path} among the files to sign")
    return backend.submit_signatures(file_path, sign_files(secret_key, files, before_sign))


@dataclass(frozen=True)
class RevocationRequest:
    document: RevocationDocument
    signature: Signature

    @property
    def revocation_json(self) -> str:
        return self.document.raw.decode("utf-8")


def build_revocation(
    secret_key: SecretKey, subject: bytes, now: int | None = None, reason: str | None = None
) -> RevocationRequest:
    """A revocation document for ``subject`` (its SHA-512 digest), initiated by our key."""
    doc = RevocationDocument.create(
        sha512(subject),
        secret_key.public_key,
        int(time.time()) if now is None else now,
        reason,
    )
    return RevocationRequest(document=doc, signature=secret_key.sign(sha512(doc.raw)))


def revoke(
    backend: BackendClient, secret_key: SecretKey, file_path: str, reason: str | None = None
) -> RevokeResult:
    """Fetch the signed file, build and sign its revocation document, submit it."""
    subject = backend.get_file(file_path)
    req = build_revocation(secret_key, subject, reason=reason)
    return backend.revoke(file_path, req.revocation_json, req.signature)
