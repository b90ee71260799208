"""Shared pytest fixtures. Keep them generic: other test modules append their own below."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from asfaload.devtools.server import ServerProcess
from asfaload.store import Mirror

VECTORS = Path(__file__).resolve().parent / "vectors"
REFERENCE_KEYS = VECTORS / "reference-minisign-keys"
REFERENCE_PASSWORD = "password"
# Cheap Argon2id for ed25519 keys written by tests (decoding still enforces the real limits).
CHEAP_KDF = "8,1,1"


@pytest.fixture(scope="session", autouse=True)
def private_cache_dir() -> Iterator[Path]:
    """The client's cache (signing clones, fetched mirrors) in a directory of this run, never
    the user's own; tests that need another set ASFALOAD_CACHE_DIR themselves."""
    with tempfile.TemporaryDirectory(prefix="asfaload-test-cache-") as d:
        old = os.environ.get("ASFALOAD_CACHE_DIR")
        os.environ["ASFALOAD_CACHE_DIR"] = d
        yield Path(d)
        if old is None:
            os.environ.pop("ASFALOAD_CACHE_DIR", None)
        else:
            os.environ["ASFALOAD_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def reference_keys_dir() -> Path:
    """Upstream Asfaload's fixture minisign keys key_0..key_2 (password ``password``).

    Origin in ``tests/vectors/README.md``."""
    assert (REFERENCE_KEYS / "key_0").is_file(), f"missing test vectors in {REFERENCE_KEYS}"
    return REFERENCE_KEYS


@pytest.fixture(scope="session")
def minisign_bin() -> str:
    path = shutil.which("minisign")
    assert path, "the minisign tool must be installed (apt-get install minisign)"
    return path


@pytest.fixture(scope="session")
def run_minisign(minisign_bin: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the real minisign tool; ``password`` is fed on stdin (minisign reads it from a pipe)."""

    def run(*args: str, password: str | None = None, cwd: Path | None = None):
        stdin = None if password is None else f"{password}\n{password}\n"
        return subprocess.run(
            [minisign_bin, *args],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=cwd,
            timeout=120,
        )

    return run


@pytest.fixture(scope="session")
def minisign_tool_keypair(
    tmp_path_factory: pytest.TempPathFactory,
    run_minisign: Callable[..., subprocess.CompletedProcess[str]],
) -> tuple[Path, Path, str]:
    """A password-protected key pair made by ``minisign -G`` (scrypt N=2^20: slow, made once).

    Returns (public key file, secret key file, password).
    """
    d = tmp_path_factory.mktemp("minisign-tool-key")
    password = "tool generated pass 42"
    pub, sec = d / "tool.pub", d / "tool.key"
    res = run_minisign("-G", "-p", str(pub), "-s", str(sec), password=password)
    assert res.returncode == 0, res.stderr
    return pub, sec, password


@pytest.fixture
def cheap_kdf(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make ed25519 secret keys written during the test use a cheap Argon2id."""
    monkeypatch.setenv("ASFALOAD_INSECURE_TEST_KDF_PARAMS", CHEAP_KDF)
    yield


@pytest.fixture(scope="session")
def minisign_tool_unencrypted_keypair(
    tmp_path_factory: pytest.TempPathFactory,
    run_minisign: Callable[..., subprocess.CompletedProcess[str]],
) -> tuple[Path, Path]:
    """A key pair made by ``minisign -G -W`` (no password, so signing with the tool is fast)."""
    d = tmp_path_factory.mktemp("minisign-tool-key-w")
    pub, sec = d / "tool.pub", d / "tool.key"
    res = run_minisign("-G", "-W", "-p", str(pub), "-s", str(sec))
    assert res.returncode == 0, res.stderr
    return pub, sec


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    """A fresh, empty mirror repository in the test's tmp dir (not durable: no fsync)."""
    m = Mirror.init(str(tmp_path / "data" / "mirror.git"), durable=False, server_info=False)
    yield m
    m.close()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A started ``asfaload serve`` (module-scoped), private URLs allowed."""
    data_dir = tmp_path_factory.mktemp("server") / "data"
    server = ServerProcess(data_dir, env={"ASFALOAD_ALLOW_PRIVATE_URLS": "1"}).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["fast", "libgit2"])
def object_store(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each object store of the mirror's writer (asfaload.store.objects) in turn, chosen through
    ASFALOAD_OBJECTS: mirrors the test opens, and processes it starts, write through it."""
    name: str = request.param
    monkeypatch.setenv("ASFALOAD_OBJECTS", name)
    return name
