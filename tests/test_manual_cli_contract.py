"""Acceptance audit of issue 2 (foundation), through the installed ``asfaload`` console script
(real processes, real exit codes) and the real ``minisign`` tool:

- interop: a key made by ``asfaload new-keys`` (production scrypt) signs a digest that
  ``minisign -V -P <pub> -m <digest-file> -x <sig>`` accepts; a password-protected ``minisign -G``
  key's own signatures verify in ``asfaload verify-sig``; the signature vector made with upstream
  Asfaload's fixture key_0 (``tests/vectors/``) verifies in ``asfaload verify-sig``;
- the outputs of ``new-keys`` and ``new-signers-file`` compared line for line with the lines the
  Asfaload user manual prints for them (written out below);
- every invalid ``new-signers-file`` combination the issue names: exit code 1, one clear line,
  nothing written.
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from asfaload.crypto import PublicKey, SecretKey, sha512_file
from asfaload.devtools.server import ASFALOAD

STRONG = "correct horse battery staple 42"
CHEAP_ENV = {"ASFALOAD_INSECURE_TEST_KDF_PARAMS": "8,1,1"}

# key_0's signature of the content "data" (wire form; tests/vectors/README.md).
VECTOR_WIRE = (
    "dW50cnVzdGVkIGNvbW1lbnQ6IHNpZ25hdHVyZSBmcm9tIHJzaWduIHNlY3JldCBrZXkKUlVTMWtaSmVLbWVOT1BqanhkaE"
    "g3SVh6QlA1RFJEdGRCRzkxU2QyYjFHNkIzY0g5cEZKWlhHamp4clBocTdvdHQ5THlVL3VWTHZvSmQyd1dzMkFBYzk3VVBC"
    "K2FRbTlVT3dvPQp0cnVzdGVkIGNvbW1lbnQ6IHRpbWVzdGFtcDoxNzAwMDAwMDAwCjViYitrUFpNVU5OdVdmaG5weUhxc3"
    "ZWZDhWempxemZPNC8ranRBVWduMjI2Z2hpSUdxRmpXdGZyZExEdWkySkJrUGV0VWg4VldNakZLMERZYjhJbEJRPT0K"
)


def asfaload(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("ASFALOAD_")}
    full.update(env or {})
    return subprocess.run(
        [ASFALOAD, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


# The manual's output lines, for the manual's own examples. ``new-keys -n mykey -o ~/.asfaload``:
NEW_KEYS_HUMAN = [
    "Generating Minisign keypair with name 'mykey' in directory \"/home/user/.asfaload\"",
    "Public key saved at /home/user/.asfaload/mykey.pub and secret key at /home/user/.asfaload/mykey",
]
NEW_KEYS_JSON = (
    '{"public_key_path":"/home/user/.asfaload/mykey.pub",'
    '"secret_key_path":"/home/user/.asfaload/mykey"}'
)
# ``new-signers-file`` with three artifact signers (threshold 2) and one admin key (threshold 1),
# written to ``signers.json``:
NEW_SIGNERS_FILE_HUMAN = [
    'Signers file created successfully at: "signers.json"',
    "Artifact signers: 3 (threshold: 2)",
    "Admin keys: 1 (threshold: 1)",
    "Master keys: 0 (threshold: none)",
    "Revocation keys: 0 (threshold: none)",
]
NEW_SIGNERS_FILE_JSON = (
    '{"output_file":"signers.json","artifact_signers_count":3,"artifact_threshold":2,'
    '"admin_keys_count":1,"admin_threshold":1,"master_keys_count":0,"master_threshold":null,'
    '"revocation_keys_count":0,"revocation_threshold":null}'
)
# The how-to's summary after "2. Create the signers file" (three artifact signers, threshold 2).
HOWTO_SIGNERS_SUMMARY = [
    'Signers file created successfully at: "signers.json"',
    "Artifact signers: 3 (threshold: 2)",
    "Admin keys: 0 (threshold: none)",
    "Master keys: 0 (threshold: none)",
]


# --- interoperability with the minisign tool ----------------------------------------------------
def test_cli_made_key_signs_a_digest_minisign_accepts(
    tmp_path: Path, run_minisign: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    # Production scrypt parameters (no test override): exactly what a user gets.
    keys = tmp_path / "keys"
    res = asfaload(
        "new-keys", "-n", "mykey", "-o", str(keys), env={"ASFALOAD_NEW_KEYS_PASSWORD": STRONG}
    )
    assert res.returncode == 0, res.stderr
    artifact = tmp_path / "release.tar.gz"
    artifact.write_bytes(os.urandom(4096))
    sig = tmp_path / "release.sig"
    res = asfaload(
        "sign-file", str(artifact), "-K", str(keys / "mykey"), "-o", str(sig), "-p", STRONG
    )
    assert res.returncode == 0, res.stderr
    digest = tmp_path / "release.sha512"
    digest.write_bytes(sha512_file(artifact))
    bare = PublicKey.from_file(keys / "mykey.pub").bare
    res = run_minisign("-V", "-P", bare, "-m", str(digest), "-x", str(sig))
    assert res.returncode == 0, res.stderr
    # The same signature over other bytes is refused by minisign.
    digest.write_bytes(bytes(64))
    assert run_minisign("-V", "-P", bare, "-m", str(digest), "-x", str(sig)).returncode != 0


def test_minisign_tool_signature_with_password_key_verifies_in_cli(
    tmp_path: Path,
    minisign_tool_keypair: tuple[Path, Path, str],
    run_minisign: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    pub, sec, password = minisign_tool_keypair
    artifact = tmp_path / "file.bin"
    artifact.write_bytes(b"signed by the minisign tool\n")
    res = run_minisign("-S", "-s", str(sec), "-m", str(artifact), password=password)
    assert res.returncode == 0, res.stderr
    res = asfaload("verify-sig", str(artifact), "-s", f"{artifact}.minisig", "-k", str(pub))
    assert res.returncode == 0, res.stderr
    # (Signing WITH that key in asfaload: tests/test_cli_keys.py::test_verify_with_minisign_generated_key.)
    artifact.write_bytes(b"tampered\n")
    res = asfaload("verify-sig", str(artifact), "-s", f"{artifact}.minisig", "-k", str(pub))
    assert res.returncode != 0 and res.stderr.strip()


def test_reference_vector_verifies_in_cli(tmp_path: Path, reference_keys_dir: Path) -> None:
    data = tmp_path / "data"
    data.write_bytes(b"data")
    sig = tmp_path / "data.minisig"
    sig.write_bytes(base64.b64decode(VECTOR_WIRE))
    pub = reference_keys_dir / "key_0.pub"
    res = asfaload("verify-sig", str(data), "-s", str(sig), "-k", str(pub))
    assert res.returncode == 0, res.stderr
    # As a bare wire string and against the other fixture key (must fail).
    wire = tmp_path / "wire"
    wire.write_text(VECTOR_WIRE)
    assert asfaload("verify-sig", str(data), "-s", str(wire), "-k", str(pub)).returncode == 0
    other = reference_keys_dir / "key_1.pub"
    assert asfaload("verify-sig", str(data), "-s", str(sig), "-k", str(other)).returncode != 0


# --- outputs, line for line with the manual ------------------------------------------------------
@pytest.mark.parametrize(
    ("algorithm", "display"), [("minisign", "Minisign"), ("ed25519", "Ed25519")]
)
def test_new_keys_output_is_the_manuals(tmp_path: Path, algorithm: str, display: str) -> None:
    human = NEW_KEYS_HUMAN
    json_line = NEW_KEYS_JSON
    home = "/home/user/.asfaload"
    out = tmp_path / "home" / "user" / ".asfaload"
    env = {**CHEAP_ENV, "ASFALOAD_NEW_KEYS_PASSWORD": STRONG}
    res = asfaload("new-keys", "-n", "mykey", "-o", str(out), "-a", algorithm, env=env)
    assert res.returncode == 0, res.stderr
    expected = [ln.replace(home, str(out)).replace("Minisign", display) for ln in human]
    assert res.stdout.splitlines() == expected
    res = asfaload("new-keys", "-n", "k2", "-o", str(out), "-a", algorithm, "--json", env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [json_line.replace(home, str(out)).replace("mykey", "k2")]


def _pubs(tmp_path: Path, names: list[str], algorithm: str = "minisign") -> None:
    for n in names:
        (tmp_path / f"{n}.pub").write_text(SecretKey.generate(algorithm).public_key.file_text())


def test_new_signers_file_output_is_the_manuals(tmp_path: Path) -> None:
    human = NEW_SIGNERS_FILE_HUMAN
    json_line = NEW_SIGNERS_FILE_JSON
    _pubs(tmp_path, ["alice", "bob", "carol", "admin"])
    args = ["--artifact-signer-file", "alice.pub", "--artifact-signer-file", "bob.pub"]
    args += ["--artifact-signer-file", "carol.pub", "--artifact-threshold", "2"]
    args += ["--admin-key-file", "admin.pub", "--admin-threshold", "1"]
    res = asfaload("new-signers-file", *args, "--output-file", "signers.json", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == human
    res = asfaload(
        "new-signers-file", *args, "--output-file", "j/signers.json", "--json", cwd=tmp_path
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [json_line.replace("signers.json", "j/signers.json")]


def test_new_signers_file_howto_summary(tmp_path: Path) -> None:
    # The how-to prints four summary lines; the command's manual section (authoritative for the
    # output) adds a fifth, "Revocation keys: …". The how-to's lines must come first and unchanged.
    howto = HOWTO_SIGNERS_SUMMARY
    assert howto[0].startswith("Signers file created")
    _pubs(tmp_path, ["alice", "bob", "carol"])
    args = [a for n in ("alice", "bob", "carol") for a in ("--artifact-signer-file", f"{n}.pub")]
    res = asfaload(
        "new-signers-file", *args, "--artifact-threshold", "2", "--output-file", "signers.json",
        cwd=tmp_path,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[:4] == howto
    assert lines[4:] == ["Revocation keys: 0 (threshold: none)"]


# --- new-signers-file refusals -------------------------------------------------------------------
REFUSALS: dict[str, tuple[list[str], str]] = {
    "artifact-threshold-0": (["-a", "{alice}", "-A", "0"], r"between 1 and"),
    "artifact-threshold-above-count": (["-a", "{alice}", "-a", "{bob}", "-A", "3"], r"between 1 and"),
    "admin-threshold-0": (["-a", "{alice}", "-A", "1", "-d", "{admin}", "-D", "0"], r"between 1 and"),
    "revocation-threshold-above-count": (
        ["-a", "{alice}", "-A", "1", "-r", "{bob}", "-R", "2"],
        r"between 1 and",
    ),
    "missing-artifact-threshold": (["-a", "{alice}"], r"--artifact-threshold is required"),
    "missing-admin-threshold": (["-a", "{alice}", "-A", "1", "-d", "{admin}"], r"--admin-threshold is required"),
    "missing-master-threshold": (["-a", "{alice}", "-A", "1", "-m", "{admin}"], r"--master-threshold is required"),
    "missing-revocation-threshold": (["-a", "{alice}", "-A", "1", "-r", "{bob}"], r"--revocation-threshold is required"),
    "duplicate-artifact-key": (["-a", "{alice}", "-a", "{alice}", "-A", "1"], r"Duplicate"),
    "duplicate-key-file-and-string": (["-a", "{alice}", "--artifact-signer-file", "alice.pub", "-A", "1"], r"Duplicate"),
    "mixed-algorithms": (["-a", "{alice}", "-a", "{ed}", "-A", "1"], r"one algorithm"),
    "mixed-algorithms-across-groups": (["-a", "{alice}", "-A", "1", "-r", "{ed}", "-R", "1"], r"one algorithm"),
    "master-key-also-artifact-signer": (["-a", "{alice}", "-A", "1", "-m", "{alice}", "-M", "1"], r"master key"),
    "master-key-also-admin": (
        ["-a", "{alice}", "-A", "1", "-d", "{admin}", "-D", "1", "-m", "{admin}", "-M", "1"],
        r"master key",
    ),
    "master-key-also-revoker": (
        ["-a", "{alice}", "-A", "1", "-r", "{bob}", "-R", "1", "-m", "{bob}", "-M", "1"],
        r"master key",
    ),
    "no-artifact-signer": (["-A", "1"], r"artifact signer"),
}  # fmt: skip


@pytest.fixture(scope="module")
def keydir(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    d = tmp_path_factory.mktemp("acc2-pubs")
    _pubs(d, ["alice", "bob", "admin"])
    _pubs(d, ["ed"], "ed25519")
    return d, {n: str(PublicKey.from_file(d / f"{n}.pub")) for n in ("alice", "bob", "admin", "ed")}


@pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
def test_new_signers_file_refusals(
    keydir: tuple[Path, dict[str, str]], tmp_path: Path, case: str
) -> None:
    d, strings = keydir
    args, pattern = REFUSALS[case]
    filled = [strings[a[1:-1]] if a.startswith("{") else a for a in args]
    out = tmp_path / "sub" / "signers.json"
    res = asfaload("new-signers-file", *filled, "-o", str(out), cwd=d)
    assert res.returncode == 1, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    assert re.search(pattern, lines[0]), lines[0]
    assert "Traceback" not in res.stderr and res.stdout == ""
    assert not out.exists() and not out.parent.exists()


def test_new_signers_file_refuses_existing_output(tmp_path: Path) -> None:
    _pubs(tmp_path, ["alice"])
    out = tmp_path / "signers.json"
    out.write_text("keep me")
    res = asfaload("new-signers-file", "--artifact-signer-file", "alice.pub", "-A", "1", "-o",
                   str(out), cwd=tmp_path)  # fmt: skip
    assert res.returncode == 1
    assert res.stderr.startswith("Error: ") and len(res.stderr.strip().splitlines()) == 1
    assert out.read_text() == "keep me"
