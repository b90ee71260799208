"""The demo project of the web page and the headless Chromium that shows it.

:func:`seed_demo` fills a mirror with one project in every state (a signers update, so a history
entry; a complete release, a pending one and a revoked one); :func:`chromium` and
:func:`screenshot` drive Debian's ``chromium`` through ``chromium-driver`` (Selenium), with the
flags that work in a container as root. Used by ``examples/webpage.py`` (``make screenshot``) and
the web page tests (``tests/test_web.py``).

The mirror is filled by submitting the rules engine's operations to the server's mirror from
this process, as the test fixtures do (the store coordinates writers across processes); each
operation is exactly what the REST API or a ``git push`` would commit.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from asfaload import layout
from asfaload.crypto import SecretKey, sha512
from asfaload.model import SignerGroup, SignersFile
from asfaload.model.index import PublishedFile, ReleaseIndex
from asfaload.model.metadata import SignersMetadata
from asfaload.model.revocation import RevocationDocument
from asfaload.rules import AddSignatures, pending_request
from asfaload.rules.ops import ProposeUpdate, Register, RegisterRelease, Revoke
from asfaload.store import Mirror

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
DEMO_PROJECT = "https/github.com/443/acme/tool"


# --- filling a mirror ------------------------------------------------------------------------
def signers_file(
    artifact: Sequence[SecretKey],
    threshold: int,
    *,
    admin: Sequence[SecretKey],
    revocation: Sequence[SecretKey] = (),
    revocation_threshold: int = 1,
    timestamp: int,
) -> bytes:
    def group(keys: Sequence[SecretKey], t: int) -> SignerGroup:
        return SignerGroup(tuple(k.public_key for k in keys), t)

    return SignersFile.create(
        artifact_signers=[group(artifact, threshold)],
        admin_keys=[group(admin, 1)],
        revocation_keys=[group(revocation, revocation_threshold)] if revocation else None,
        timestamp=timestamp,
    ).raw


def metadata(signers: bytes, url: str, when: int) -> bytes:
    raw_url = url.replace("github.com", "raw.githubusercontent.com").replace("/blob/", "/")
    return SignersMetadata.create(
        "Github", url, raw_url, retrieved_at=when, content=signers
    ).to_bytes()


def sign(mirror: Mirror, subject: str, key: SecretKey) -> None:
    """Sign every file of the open request of ``subject``, as ``sign-pending`` does."""
    view = mirror.view()
    sigs = {}
    for f in pending_request(view, subject).files:
        data = view.read(f)
        assert data is not None
        sigs[f] = key.sign(sha512(data))
    mirror.submit(AddSignatures(subject, key.public_key, sigs))


def register_release(
    mirror: Mirror, project: str, tag: str, files: Sequence[PublishedFile], by: SecretKey
) -> str:
    path = layout.github_release_index_path(project, tag)
    index = ReleaseIndex.create(list(files), mirrored_on=int(time.time()))
    mirror.submit(RegisterRelease(path, index.to_bytes(), by.public_key))
    return path


def revoke(mirror: Mirror, subject: str, by: SecretKey, reason: str) -> None:
    data = mirror.view().read(subject)
    assert data is not None
    doc = RevocationDocument.create(sha512(data), by.public_key, int(time.time()), reason)
    raw = doc.to_bytes()
    mirror.submit(Revoke(subject, raw, by.sign(sha512(raw)), by.public_key))


def asset(project_url: str, tag: str, name: str, content: bytes) -> PublishedFile:
    import hashlib

    digest = hashlib.sha256(content).hexdigest()
    return PublishedFile(name, "Sha256", f"{project_url}/releases/download/{tag}/{name}", digest)


@dataclass(frozen=True)
class Demo:
    project: str
    complete: str
    pending: str
    revoked: str
    keys: dict[str, SecretKey]


def seed_demo(mirror: Mirror, project: str = DEMO_PROJECT) -> Demo:
    """A project with history (alice + bob, replaced by alice + bob + carol, 2 of 3; dave and
    erin revoke, 2 of 2) and three releases: v1.0 complete, v1.1 pending (alice signed, one more
    needed), v0.9 revoked."""
    names = ("alice", "bob", "carol", "dave", "erin")
    k = {n: SecretKey.generate("minisign") for n in names}
    url = "https://github.com/acme/tool/blob/main/asfaload.signers.json"
    now = int(time.time())
    first = signers_file([k["alice"], k["bob"]], 2, admin=[k["alice"]], timestamp=now - 3600)
    mirror.submit(Register(project, first, metadata(first, url, now), k["alice"].public_key))
    pending = layout.signers_file_path(project, pending=True)
    for n in ("alice", "bob"):
        sign(mirror, pending, k[n])
    second = signers_file(
        [k["alice"], k["bob"], k["carol"]],
        2,
        admin=[k["alice"]],
        revocation=[k["dave"], k["erin"]],
        revocation_threshold=2,
        timestamp=now - 60,
    )
    mirror.submit(ProposeUpdate(project, second, metadata(second, url, now), k["alice"].public_key))
    for n in ("alice", "carol", "dave", "erin"):
        sign(mirror, pending, k[n])
    gh = "https://github.com/acme/tool"
    revoked = register_release(
        mirror, project, "v0.9", [asset(gh, "v0.9", "tool-0.9.tar.gz", b"old")], k["bob"]
    )
    for n in ("bob", "carol"):
        sign(mirror, revoked, k[n])
    revoke(mirror, revoked, k["dave"], "build host compromised")
    sign(mirror, layout.pending_revocation_path(revoked), k["erin"])
    complete = register_release(
        mirror,
        project,
        "v1.0",
        [
            asset(gh, "v1.0", "tool-1.0-linux-amd64.tar.gz", b"linux"),
            asset(gh, "v1.0", "tool-1.0-darwin-arm64.tar.gz", b"mac"),
        ],
        k["alice"],
    )
    for n in ("alice", "carol"):
        sign(mirror, complete, k[n])
    pending_release = register_release(
        mirror, project, "v1.1", [asset(gh, "v1.1", "tool-1.1.tar.gz", b"new")], k["alice"]
    )
    sign(mirror, pending_release, k["alice"])
    return Demo(project, complete, pending_release, revoked, k)


# --- the browser -----------------------------------------------------------------------------
@contextmanager
def chromium(width: int = 900, height: int = 1200) -> Iterator[object]:
    """A headless Chromium (a selenium ``webdriver.Chrome``) with a fresh profile, console
    messages kept for ``driver.get_log("browser")``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="asfaload-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        options.add_argument(f"--window-size={width},{height}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
        try:
            yield driver
        finally:
            driver.quit()


def screenshot(driver: object, url: str, out: Path, width: int = 900) -> None:
    """The whole page at ``url`` (the window grown to the page's height) as a PNG."""
    from selenium.webdriver.remote.webdriver import WebDriver

    assert isinstance(driver, WebDriver)
    driver.get(url)
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(width, height + 120)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(out)):
        raise RuntimeError(f"Chromium could not save a screenshot to {out}")
