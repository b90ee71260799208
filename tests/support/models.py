"""One valid document of each signed-file model, with its two parsers (bytes and dict): the
property tests mutate them so that the mutations reach deep into each parser."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asfaload.crypto import SecretKey, sha512
from asfaload.model import (
    CurrentSignersInfo,
    HistoryEntry,
    PublishedFile,
    ReleaseIndex,
    RevocationDocument,
    SignaturesFile,
    SignerGroup,
    SignersChain,
    SignersFile,
    SignersHistory,
    SignersMetadata,
)

SK = SecretKey.generate("minisign")
PK = SK.public_key
_SF = SignersFile.create([SignerGroup((PK,), 1)], timestamp=1)
_META = SignersMetadata.create("Gitlab", "u", "r", retrieved_at=1, content=_SF.raw)
_SIGS = SignaturesFile.empty().with_entry(PK, SK.sign(sha512(_SF.raw)))
_INFO = CurrentSignersInfo(_SF, _SIGS, _META, SignaturesFile.empty())
_ENTRY = HistoryEntry.of(_INFO, 2)

# Each model with one valid document, so mutations reach deep into the parser.
MODELS: dict[str, tuple[Callable[[bytes], Any], Callable[[Any], Any], dict[str, Any]]] = {
    "signers": (SignersFile.parse, SignersFile.from_dict, _SF.to_dict()),
    "signatures": (SignaturesFile.from_bytes, SignaturesFile.from_dict, _SIGS.to_dict()),
    "index": (
        ReleaseIndex.from_bytes,
        ReleaseIndex.from_dict,
        ReleaseIndex.create([PublishedFile("f", "Sha256", "s", "0" * 64)], 1).to_dict(),
    ),
    "metadata": (SignersMetadata.from_bytes, SignersMetadata.from_dict, _META.to_dict()),
    "revocation": (
        RevocationDocument.from_bytes,
        RevocationDocument.from_dict,
        RevocationDocument.create(sha512(b"x"), PK, 1, reason="r").to_dict(),
    ),
    "history": (
        SignersHistory.from_bytes,
        SignersHistory.from_dict,
        SignersHistory((_ENTRY,)).to_dict(),
    ),
    "chain": (
        SignersChain.from_bytes,
        SignersChain.from_dict,
        SignersChain((_ENTRY,), _INFO).to_dict(),
    ),
}
