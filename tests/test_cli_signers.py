"""``new-signers-file``: manual output, the written format, and every refusal."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from asfaload.cli.main import cli
from click.testing import CliRunner

from asfaload.crypto import PublicKey, SecretKey
from asfaload.model.signers import SignersFile


def run(args):
    return CliRunner().invoke(cli, ["new-signers-file", *args], catch_exceptions=False)


@pytest.fixture(scope="module")
def pubs(tmp_path_factory):
    """Seven minisign .pub files and two ed25519 ones (no secret keys needed)."""
    d = tmp_path_factory.mktemp("pubs")
    names = ["alice", "bob", "carol", "admin", "master", "revoke1", "revoke2"]
    out = {}
    for n in names:
        p = d / f"{n}.pub"
        p.write_text(SecretKey.generate("minisign").public_key.file_text())
        out[n] = p
    for n in ("ed1", "ed2"):
        p = d / f"{n}.pub"
        p.write_text(SecretKey.generate("ed25519").public_key.file_text())
        out[n] = p
    return out


def key(p):
    return str(PublicKey.from_file(p))


def _assert_refused(res, out, fragment):
    assert res.exit_code == 1, res.output
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    assert fragment in lines[0], lines[0]
    assert res.stdout == ""
    assert not out.exists()


def test_howto_example_output_and_file(tmp_path, pubs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = []
    for n in ("alice", "bob", "carol"):
        args += ["--artifact-signer-file", str(pubs[n])]
    before = datetime.now(UTC).replace(microsecond=0)
    res = run([*args, "--artifact-threshold", "2", "--output-file", "signers.json"])
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [
        'Signers file created successfully at: "signers.json"',
        "Artifact signers: 3 (threshold: 2)",
        "Admin keys: 0 (threshold: none)",
        "Master keys: 0 (threshold: none)",
        "Revocation keys: 0 (threshold: none)",
    ]
    raw = (tmp_path / "signers.json").read_bytes()
    assert raw.endswith(b"}\n")
    doc = json.loads(raw)
    assert list(doc) == ["version", "timestamp", "artifact_signers"]
    assert doc["version"] == 1
    ts = datetime.strptime(doc["timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert before <= ts <= datetime.now(UTC)
    assert doc["artifact_signers"] == [
        {
            "signers": [
                {"kind": "key", "data": {"pubkey": key(pubs[n])}} for n in ("alice", "bob", "carol")
            ],
            "threshold": 2,
        }
    ]
    assert raw == json.dumps(doc, indent=2).encode() + b"\n"
    parsed = SignersFile.parse(raw)
    assert parsed.algorithm == "minisign"


def test_manual_json_output(tmp_path, pubs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = run(
        [
            "--artifact-signer-file", str(pubs["alice"]),
            "--artifact-signer-file", str(pubs["bob"]),
            "--artifact-signer-file", str(pubs["carol"]),
            "-A", "2",
            "--admin-key-file", str(pubs["admin"]),
            "-D", "1",
            "-o", "signers.json",
            "--json",
        ]
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert res.stdout == (
        '{"output_file":"signers.json","artifact_signers_count":3,"artifact_threshold":2,'
        '"admin_keys_count":1,"admin_threshold":1,"master_keys_count":0,"master_threshold":null,'
        '"revocation_keys_count":0,"revocation_threshold":null}\n'
    )


def test_manual_human_output_with_admin(tmp_path, pubs, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = run(
        ["--artifact-signer-file", str(pubs["alice"]), "--artifact-signer-file", str(pubs["bob"])]
        + ["--artifact-signer-file", str(pubs["carol"]), "-A", "2"]
        + ["--admin-key-file", str(pubs["admin"]), "-D", "1", "-o", "signers.json"]
    )
    assert res.exit_code == 0, res.output
    assert res.stdout == (
        'Signers file created successfully at: "signers.json"\n'
        "Artifact signers: 3 (threshold: 2)\n"
        "Admin keys: 1 (threshold: 1)\n"
        "Master keys: 0 (threshold: none)\n"
        "Revocation keys: 0 (threshold: none)\n"
    )


def test_all_groups_short_flags_and_mixed_sources(tmp_path, pubs):
    out = tmp_path / "deep" / "er" / "signers.json"
    res = run(
        ["-a", key(pubs["alice"]), "-a", key(pubs["bob"]).removeprefix("minisign:")]
        + ["--artifact-signer-file", str(pubs["carol"]), "-A", "1"]
        + ["-d", key(pubs["admin"]), "-D", "1"]
        + ["-m", key(pubs["master"]), "-M", "1"]
        + ["-r", key(pubs["revoke1"]), "--revocation-key-file", str(pubs["revoke2"]), "-R", "2"]
        + ["-o", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[1:] == [
        "Artifact signers: 3 (threshold: 1)",
        "Admin keys: 1 (threshold: 1)",
        "Master keys: 1 (threshold: 1)",
        "Revocation keys: 2 (threshold: 2)",
    ]
    sf = SignersFile.parse(out.read_bytes())
    assert [str(k) for k in sf.artifact_signers[0].signers] == [
        key(pubs["alice"]),
        key(pubs["bob"]),
        key(pubs["carol"]),
    ]
    assert sf.master_groups()[0].signers == (PublicKey.from_file(pubs["master"]),)
    assert sf.revocation_groups()[0].threshold == 2


def test_ed25519_keys(tmp_path, pubs):
    out = tmp_path / "s.json"
    res = run(
        [
            "--artifact-signer-file",
            str(pubs["ed1"]),
            "-a",
            key(pubs["ed2"]),
            "-A",
            "2",
            "-o",
            str(out),
        ]
    )
    assert res.exit_code == 0, res.output
    assert SignersFile.parse(out.read_bytes()).algorithm == "ed25519"


@pytest.mark.parametrize(
    "args,fragment",
    [
        (["-A", "1"], "At least one artifact signer is required"),
        (["--artifact-signer-file", "{alice}"], "--artifact-threshold is required"),
        (["--artifact-signer-file", "{alice}", "-A", "0"], "between 1 and the number"),
        (["--artifact-signer-file", "{alice}", "-A", "-1"], "between 1 and the number"),
        (
            ["--artifact-signer-file", "{alice}", "-a", "{bob}", "-A", "3"],
            "between 1 and the number",
        ),
        (["-a", "{alice}", "-A", "1", "-d", "{admin}"], "--admin-threshold is required"),
        (["-a", "{alice}", "-A", "1", "-m", "{master}"], "--master-threshold is required"),
        (["-a", "{alice}", "-A", "1", "-r", "{revoke1}"], "--revocation-threshold is required"),
        (
            ["-a", "{alice}", "-A", "1", "-d", "{admin}", "-D", "2"],
            "--admin-threshold must be between",
        ),
        (["-a", "{alice}", "-A", "1", "-D", "1"], "--admin-threshold was given but no admin keys"),
        (["-a", "{alice}", "-A", "1", "-M", "1"], "--master-threshold was given"),
        (["-a", "{alice}", "-A", "1", "-R", "1"], "--revocation-threshold was given"),
        (
            ["-a", "{alice}", "--artifact-signer-file", "{alice}", "-A", "1"],
            "Duplicate artifact signer key",
        ),
        (
            ["-a", "{alice}", "-A", "1", "-d", "{admin}", "-d", "{admin}", "-D", "1"],
            "Duplicate admin key",
        ),
        (["-a", "{alice}", "-a", "{ed1}", "-A", "1"], "one algorithm"),
        (["-a", "{alice}", "-A", "1", "-d", "{ed1}", "-D", "1"], "one algorithm"),
        (["-a", "{alice}", "-A", "1", "-m", "{alice}", "-M", "1"], "master key"),
        (
            ["-a", "{alice}", "-A", "1", "-d", "{master}", "-D", "1", "-m", "{master}", "-M", "1"],
            "master key",
        ),
        (
            ["-a", "{alice}", "-A", "1", "-r", "{master}", "-R", "1", "-m", "{master}", "-M", "1"],
            "master key",
        ),
        (["-a", "minisign:RWnope", "-A", "1"], "Invalid key for --artifact-signer"),
        (["-a", "rsa:AAAA", "-A", "1"], "Unknown key algorithm"),
        (["--artifact-signer-file", "/nonexistent.pub", "-A", "1"], "--artifact-signer-file"),
    ],
)
def test_refusals_write_nothing(tmp_path, pubs, args, fragment):
    # "{name}" is that signer's .pub path after a *-file option, else its key string.
    filled: list[str] = []
    for a in args:
        if a.startswith("{"):
            name = a[1:-1]
            filled.append(str(pubs[name]) if filled[-1].endswith("-file") else key(pubs[name]))
        else:
            filled.append(a)
    out = tmp_path / "sub" / "signers.json"
    res = run([*filled, "-o", str(out)])
    _assert_refused(res, out, fragment)
    assert not out.parent.exists()


def test_refuses_existing_output(tmp_path, pubs):
    out = tmp_path / "signers.json"
    out.write_text("keep me")
    res = run(["-a", key(pubs["alice"]), "-A", "1", "-o", str(out)])
    assert res.exit_code == 1
    assert res.stderr.startswith("Error: Refusing to overwrite")
    assert out.read_text() == "keep me"


def test_refuses_directory_output(tmp_path, pubs):
    res = run(["-a", key(pubs["alice"]), "-A", "1", "-o", str(tmp_path)])
    assert res.exit_code == 1
    assert res.stderr.startswith("Error: Refusing to overwrite")


def test_json_error_form(tmp_path, pubs):
    out = tmp_path / "s.json"
    res = run(["-a", key(pubs["alice"]), "-A", "0", "-o", str(out), "--json"])
    assert res.exit_code == 1
    assert "between 1 and" in json.loads(res.stderr)["error"]
    assert not out.exists()
