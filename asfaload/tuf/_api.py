"""The python-tuf and securesystemslib names we use, imported from where they are defined.

Their public modules re-export them implicitly, which strict mypy refuses; importing them here
once, explicitly re-exported, keeps the rest of the package on plain names.
"""

from __future__ import annotations

from securesystemslib.signer._crypto_signer import CryptoSigner as CryptoSigner
from securesystemslib.signer._key import Key as Key
from securesystemslib.signer._key import SSlibKey as SSlibKey
from securesystemslib.signer._signature import Signature as Signature
from securesystemslib.signer._signer import Signer as Signer
from tuf.api._payload import MetaFile as MetaFile
from tuf.api._payload import Root as Root
from tuf.api._payload import RootVerificationResult as RootVerificationResult
from tuf.api._payload import Signed as Signed
from tuf.api._payload import Snapshot as Snapshot
from tuf.api._payload import Targets as Targets
from tuf.api._payload import Timestamp as Timestamp
from tuf.api.metadata import Metadata as Metadata
