"""Verified download: the step users trust (manual "Download a file with signature verification").

Order of checks, each failing closed:

1. map the URL to its release index path (:mod:`.locate`; ``--type`` overrides detection);
2. fetch the index, then check **revocation first**: a verified
   revocation refuses the file whatever else the mirror shows;
3. fetch the signers copy and the complete signatures, and verify the artifact thresholds
   client-side (:mod:`.verify`); with ``full_check``, verify the signers chain (:mod:`.chain`);
4. find the file in the index (SHA-256 or SHA-512 only);
5. stream it from the forge while hashing into a temporary file, moved into place only when the
   digest matches (:mod:`.transfer`): a failed download leaves no output file.

Steps 1-4 are :func:`verify_release`, written once against a :class:`~.source.ReleaseSource`
(a backend's REST API or a git mirror); :func:`download` adds step 5, and
:func:`verify_local_file` (``asfaload verify-file``) hashes a file already on disk instead.

Progress and result lines go to a :class:`Reporter`; the CLI prints them as the manual shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .. import layout
from ..errors import (
    DigestMismatchError,
    FormatError,
    NotFoundError,
    RefusingToOverwriteError,
    RevokedError,
    UnsupportedAlgorithmError,
)
from ..model import ACCEPTED_DOWNLOAD_ALGOS, PublishedFile, ReleaseIndex
from .chain import verify_full_chain
from .locate import ArtifactLocation, locate
from .source import ReleaseSource
from .transfer import HASH_LABELS, HASHES, download_verified, fetch_small, hash_file
from .verify import Revocation, check_artifact_signatures, check_revocation

MB = 1024 * 1024
_BINARY_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def mb(n: int) -> str:
    """A size as the manual's lines print it (MiB, labelled "MB"; "0.00 MB" below 5 KiB):
    kept byte for byte where scripts read the output."""
    return f"{n / MB:.2f} MB"


def human_size(n: float) -> str:
    """A size for people, in binary units labelled as such: ``512 B``, ``73.2 KiB``,
    ``1.50 GiB`` (about three significant digits; bytes are never rounded to zero)."""
    if n < 1024:
        return f"{int(n)} B"
    value = float(n)
    for unit in _BINARY_UNITS:
        value /= 1024
        if value < 1024 or unit == _BINARY_UNITS[-1]:
            break
    digits = 2 if value < 10 else 1 if value < 100 else 0
    return f"{value:.{digits}f} {unit}"


def duration_text(seconds: float) -> str:
    """A time left or taken, to the second: ``<1 s``, ``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    if seconds < 1:
        return "<1 s"
    whole = int(seconds + 0.5)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


class Reporter:
    """Receives the download's progress; the default drops everything (library use)."""

    def line(self, text: str) -> None:
        """One completed step (``✓ …``) or heading."""

    def warning(self, text: str) -> None:
        """Something suspicious that does not stop the download."""

    def revoked(self, revocation: Revocation) -> None:
        """The file is revoked; called just before :class:`RevokedError` is raised."""

    def transfer_started(self, file_name: str, size: int | None) -> None:
        """The artifact transfer begins (``size`` from Content-Length, when known)."""

    def progress(self, done: int, total: int | None) -> None:
        """Bytes received so far."""

    def transfer_finished(self, done: int, total: int | None) -> None:
        """The last byte arrived (before the digest is compared)."""

    def size_text(self, n: int) -> str:
        """How a size is written in the lines this module reports (the manual's form)."""
        return mb(n)


@dataclass(frozen=True)
class DownloadResult:
    location: ArtifactLocation
    path: Path
    size: int
    algo: str
    valid_signatures: int
    chain_entries: int | None


def _safe_file_name(name: str) -> str:
    if name in ("", ".", "..") or "/" in name or "\\" in name or "\x00" in name:
        raise FormatError(f"Cannot derive a file name from the URL: {name!r}")
    return name


def find_entry(index: ReleaseIndex, loc: ArtifactLocation) -> PublishedFile:
    entry = index.find(loc.file_name)
    if entry is None:
        entry = next((f for f in index.published_files if f.source == loc.url), None)
    if entry is None:
        raise NotFoundError(f"File '{loc.file_name}' not found in index {loc.index_path}")
    if entry.algo not in ACCEPTED_DOWNLOAD_ALGOS:
        raise UnsupportedAlgorithmError(f"Unsupported hash algorithm: {entry.algo}")
    return entry


@dataclass(frozen=True)
class VerifiedRelease:
    """A release whose index, signatures and (optionally) signers chain verified, and the
    index entry of the requested file: what the file's bytes must hash to."""

    location: ArtifactLocation
    entry: PublishedFile
    valid_signatures: int
    chain_entries: int | None


def verify_release(
    url: str,
    source: ReleaseSource,
    *,
    forge: str | None = None,
    full_check: bool = False,
    reporter: Reporter | None = None,
) -> VerifiedRelease:
    """Steps 1-4 for ``url``, reading the release's facts from ``source`` (a backend or a git
    mirror) and trusting none of them: everything is re-verified here."""
    rep = reporter or Reporter()
    loc = locate(url, forge)
    index_path = loc.index_path
    where = source.label

    try:
        index_raw = source.get_file(index_path)
    except NotFoundError as exc:
        raise NotFoundError(
            f"No release index on {where} for this URL (looked for {index_path}); "
            "is the release registered?"
        ) from exc

    revocation_raw = source.get_file_or_none(layout.revocation_path(index_path))
    if revocation_raw is not None:
        revocation = check_revocation(
            index_raw,
            revocation_raw,
            source.get_file_or_none(layout.revocation_signatures_path(index_path)),
            source.get_file_or_none(layout.revocation_signers_path(index_path)),
            where=where,
        )
        rep.revoked(revocation)
        raise RevokedError(revocation.message)

    signatures_raw = source.get_file_or_none(layout.signatures_path(index_path))
    signers_raw = source.get_file_or_none(layout.local_signers_path(index_path))
    if signatures_raw is None or signers_raw is None:
        raise NotFoundError(
            f"The release is not fully signed yet on {where}: no complete signatures for "
            f"{index_path}"
        )
    rep.line(f"✓ Downloaded signers file ({len(signers_raw)} bytes)")
    rep.line(f"✓ Downloaded index file ({len(index_raw)} bytes)")
    rep.line(f"✓ Downloaded signatures file ({len(signatures_raw)} bytes)")

    check = check_artifact_signatures(signers_raw, index_raw, signatures_raw)
    if check.invalid:
        rep.warning(f"⚠ Warning: {check.invalid} invalid signature(s)")
    rep.line(f"✓ Signatures verified successfully ({len(check.valid)} valid)")

    chain_entries = None
    if full_check:
        chain_entries = verify_full_chain(source, index_path, signers_raw, fetch_small)
        rep.line(f"✓ Signers chain history verified ({chain_entries} entries)")

    try:
        index = ReleaseIndex.from_bytes(index_raw)
    except FormatError as exc:
        raise FormatError(f"Invalid release index on {where}: {exc}") from exc
    return VerifiedRelease(loc, find_entry(index, loc), len(check.valid), chain_entries)


def download(
    url: str,
    source: ReleaseSource,
    *,
    output: str | Path | None = None,
    forge: str | None = None,
    full_check: bool = False,
    reporter: Reporter | None = None,
    overwrite: bool = True,
) -> DownloadResult:
    """Verify the release of ``url`` against ``source``, then fetch the file from its forge
    into ``output`` (written only when its digest is the index's). With ``overwrite`` False an
    existing output file is refused before anything is fetched, and left as it is."""
    rep = reporter or Reporter()
    target = locate(url, forge)
    dest = Path(output) if output is not None else Path(_safe_file_name(target.file_name))
    if not overwrite and (dest.exists() or dest.is_symlink()):
        raise RefusingToOverwriteError(f"Refusing to overwrite existing file {dest}")
    rep.line(f"Starting download: {url}")
    release = verify_release(url, source, forge=forge, full_check=full_check, reporter=rep)
    loc, entry = release.location, release.entry
    shown = str(output) if output is not None else f"./{loc.file_name}"

    rep.line(f"Downloading {loc.file_name}")

    def started(size: int | None) -> None:
        rep.transfer_started(loc.file_name, size)

    outcome = download_verified(
        url,
        dest,
        entry.algo,
        entry.hash,
        on_start=started,
        on_progress=rep.progress,
        overwrite=overwrite,
    )
    rep.transfer_finished(outcome.size, outcome.size)
    rep.line(f"✓ Download complete ({rep.size_text(outcome.size)})")
    rep.line(f"✓ File hash verified ({HASH_LABELS[outcome.algo]})")
    rep.line(f"✓ File saved to: {shown}")
    rep.line(f"✓ All done! Verified {release.valid_signatures} signature(s)")
    return DownloadResult(
        location=loc,
        path=outcome.path,
        size=outcome.size,
        algo=outcome.algo,
        valid_signatures=release.valid_signatures,
        chain_entries=release.chain_entries,
    )


@dataclass(frozen=True)
class FileVerification:
    release: VerifiedRelease
    path: Path
    size: int
    algo: str


def verify_local_file(
    path: str | Path,
    url: str,
    source: ReleaseSource,
    *,
    forge: str | None = None,
    full_check: bool = False,
) -> FileVerification:
    """Verify a file already on disk as the release file of ``url`` (``asfaload verify-file``):
    the same release checks as a download, then the file's digest against the index."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"No such file: {path}")
    release = verify_release(url, source, forge=forge, full_check=full_check)
    entry = release.entry
    try:
        size, actual = hash_file(path, entry.algo)
    except OSError as exc:
        raise FormatError(f"Cannot read {path}: {exc.strerror or exc}") from exc
    if actual.lower() != entry.hash.lower():
        raise DigestMismatchError(
            f"Hash mismatch for {path.name}: expected '{entry.hash.lower()}', got '{actual}'"
        )
    return FileVerification(release, path, size, HASHES[entry.algo.lower()])
