"""``download --full-check``: verify the signers chain from its forge-published trust anchor.

Without it the client trusts the signers copy the backend serves (a compromised backend could
serve its own). With it:

1. ``GET /v1/get_signers_chain/<artifact>`` must return a non-empty chain (oldest first, ending
   with the signers file that governed the artifact);
2. every entry verifies cryptographically, signers file AND metadata, with the rules engine's own
   completion predicate: the first entry signed by all its signers, each later one by the old
   admin-or-master thresholds, the new ones, and every newly added key;
3. each metadata records the SHA-512 of its signers file;
4. the first entry's project (from its metadata URL) contains the artifact (realm check);
5. the first entry equals, byte for byte, the file fetched now from its forge ``retrieval_url``;
6. the last entry is byte for byte the signers copy the signatures were checked against.
"""

from __future__ import annotations

from collections.abc import Callable

from .. import layout
from ..crypto import PublicKey, sha512
from ..errors import AsfaloadError, VerificationError
from ..model import CurrentSignersInfo, SignersChain
from ..rules.groups import valid_signers
from ..rules.queries import RequestKind, completion_met
from .source import ReleaseSource


class ChainError(VerificationError):
    """One of the ``SignersChain*`` failure kinds; ``kind`` names it."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"Signers chain verification failed ({kind}): {message}")
        self.kind = kind


def chain_infos(doc: dict[str, object]) -> list[CurrentSignersInfo]:
    """The chain's entries, oldest first, from a ``get_signers_chain`` answer."""
    raw = doc.get("chain")
    if raw is None:
        raise ChainError("SignersChainFetchError", "the backend answer has no 'chain'")
    try:
        chain = SignersChain.from_dict(raw)
    except AsfaloadError as exc:
        raise ChainError("SignersChainFetchError", str(exc)) from exc
    infos = [e.info for e in chain.history_entries]
    if chain.current_signers_info is not None:
        infos.append(chain.current_signers_info)
    return infos


def _signed(info: CurrentSignersInfo) -> frozenset[PublicKey]:
    on_file = valid_signers(info.signatures, sha512(info.signers_file.raw))
    on_meta = valid_signers(info.metadata_signatures, sha512(info.metadata.raw))
    return on_file & on_meta


def validate_chain(infos: list[CurrentSignersInfo]) -> None:
    """Cryptographic validation of every entry (steps 2 and 3)."""
    if not infos:
        raise ChainError("SignersChainEmpty", "the backend returned an empty chain")
    prev = None
    for i, info in enumerate(infos):
        if not info.metadata.matches(info.signers_file.raw):
            raise ChainError(
                "SignersChainFirstEntryInvalid" if i == 0 else "SignersChainEntryInvalid",
                f"entry {i}: metadata does not record this signers file's digest",
            )
        signed = _signed(info)
        if prev is None:
            ok = completion_met(
                RequestKind.SIGNERS_INITIAL, info.signers_file, info.signers_file, signed
            )
            if not ok:
                raise ChainError(
                    "SignersChainFirstEntryInvalid",
                    "the first signers file is not signed by all of its signers",
                )
        elif not completion_met(RequestKind.SIGNERS_UPDATE, prev, info.signers_file, signed):
            raise ChainError(
                "SignersChainEntryInvalid",
                f"entry {i}: the signers update is not signed as the previous signers file requires",
            )
        prev = info.signers_file


def check_realm(first: CurrentSignersInfo, artifact_path: str) -> None:
    meta = first.metadata
    forge = {"Github": "github", "Gitlab": "gitlab", "FileServer": "fileserver"}.get(meta.kind)
    try:
        project = layout.project_id(meta.url, forge)
    except AsfaloadError as exc:
        raise ChainError("SignersChainTrustAnchorOutsideRealm", str(exc)) from exc
    if artifact_path != project and not artifact_path.startswith(project + "/"):
        raise ChainError(
            "SignersChainTrustAnchorOutsideRealm",
            f"the first signers file belongs to {project}, not to {artifact_path}",
        )


def verify_full_chain(
    source: ReleaseSource,
    artifact_path: str,
    signers_copy: bytes,
    fetch: Callable[[str], bytes],
) -> int:
    """Run every step; return the number of chain entries. ``source`` is a backend or a git
    mirror (:mod:`.source`); ``fetch`` reads a forge URL."""
    try:
        doc = source.get_signers_chain(artifact_path)
    except AsfaloadError as exc:
        raise ChainError("SignersChainFetchError", str(exc)) from exc
    infos = chain_infos(doc)
    validate_chain(infos)
    first = infos[0]
    check_realm(first, artifact_path)
    url = first.metadata.retrieval_url
    try:
        published = fetch(url)
    except AsfaloadError as exc:
        raise ChainError("SignersChainForgeFetchError", f"{url}: {exc}") from exc
    if published != first.signers_file.raw:
        raise ChainError(
            "SignersChainFirstEntryMismatch",
            f"the first signers file differs from the one published at {url}",
        )
    if infos[-1].signers_file.raw != signers_copy:
        raise ChainError(
            "SignersChainCopyMismatch",
            "the signers copy used for this file is not the last entry of the verified chain",
        )
    return len(infos)
