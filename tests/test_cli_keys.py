"""``new-keys``, ``sign-file``, ``verify-sig`` and the shared password handling, end to end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from asfaload.cli.main import cli
from click.testing import CliRunner

from asfaload.crypto import PublicKey, SecretKey, sha512_file
from tests.support.pty import on_pty

STRONG = "correct horse battery staple"


def run(args, env=None, input=None):
    runner = CliRunner()
    full_env = {"ASFALOAD_INSECURE_TEST_KDF_PARAMS": "8,1,1"}
    full_env.update(env or {})
    return runner.invoke(cli, args, env=full_env, input=input, catch_exceptions=False)


def listing(d: Path):
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


# --- new-keys ----------------------------------------------------------------------------------
@pytest.mark.parametrize("algorithm,display", [("minisign", "Minisign"), ("ed25519", "Ed25519")])
def test_new_keys_human_output(tmp_path, algorithm, display):
    out = tmp_path / "keys"
    res = run(["new-keys", "-n", "mykey", "-o", str(out), "-a", algorithm, "-p", STRONG])
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [
        f"Generating {display} keypair with name 'mykey' in directory \"{out}\"",
        f"Public key saved at {out}/mykey.pub and secret key at {out}/mykey",
    ]
    pk = PublicKey.from_file(out / "mykey.pub")
    assert pk.algorithm == algorithm
    assert SecretKey.load(out / "mykey", STRONG).public_key == pk
    assert (out / "mykey").stat().st_mode & 0o077 == 0


def test_new_keys_json_output_and_long_options(tmp_path):
    out = tmp_path / "k"
    res = run(
        ["new-keys", "--name", "ci-key", "--output-dir", str(out), "--algorithm", "minisign"]
        + ["--password", STRONG, "--json"]
    )
    assert res.exit_code == 0, res.output
    assert res.stdout == (
        f'{{"public_key_path":"{out}/ci-key.pub","secret_key_path":"{out}/ci-key"}}\n'
    )


def test_new_keys_env_password_and_password_file(tmp_path):
    res = run(
        ["new-keys", "-n", "a", "-o", str(tmp_path)],
        env={"ASFALOAD_NEW_KEYS_PASSWORD": STRONG},
    )
    assert res.exit_code == 0, res.output
    SecretKey.load(tmp_path / "a", STRONG)
    pwfile = tmp_path / "pw.txt"
    pwfile.write_text(STRONG + "\n")
    res = run(["new-keys", "-n", "b", "-o", str(tmp_path), "-P", str(pwfile)])
    assert res.exit_code == 0, res.output
    SecretKey.load(tmp_path / "b", STRONG)
    res = run(
        ["new-keys", "-n", "c", "-o", str(tmp_path)],
        env={"ASFALOAD_NEW_KEYS_PASSWORD_FILE": str(pwfile)},
    )
    assert res.exit_code == 0, res.output
    SecretKey.load(tmp_path / "c", STRONG)


def test_password_option_wins_over_environment(tmp_path):
    res = run(
        ["new-keys", "-n", "a", "-o", str(tmp_path), "-p", STRONG],
        env={"ASFALOAD_NEW_KEYS_PASSWORD": "other strong password 99"},
    )
    assert res.exit_code == 0, res.output
    SecretKey.load(tmp_path / "a", STRONG)


def _assert_error(res, fragment):
    assert res.exit_code == 1, res.output
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.stderr
    assert fragment in lines[0]
    assert "Traceback" not in res.output


@pytest.mark.parametrize(
    "args,env,fragment",
    [
        (["-p", "short"], {}, "too weak"),
        (["-p", "password1234"], {}, "too weak"),
        (["-p", ""], {}, "must not be empty"),
        (["-a", "rsa", "-p", STRONG], {}, "Unknown algorithm"),
        (["-p", STRONG, "-P", "/nonexistent"], {}, "conflicts"),
        ([], {}, "stdin is not a terminal"),
        (["-P", "/nonexistent/pw"], {}, "Password file not found"),
        (
            [],
            {"ASFALOAD_NEW_KEYS_PASSWORD_FILE": "/nonexistent/pw"},
            "ASFALOAD_NEW_KEYS_PASSWORD_FILE",
        ),
    ],
)
def test_new_keys_errors_write_nothing(tmp_path, args, env, fragment):
    out = tmp_path / "out"
    res = run(["new-keys", "-n", "k", "-o", str(out), *args], env=env)
    _assert_error(res, fragment)
    assert listing(out) == []


def test_new_keys_json_error_form(tmp_path):
    res = run(["new-keys", "-n", "k", "-o", str(tmp_path), "-p", "weak", "--json"])
    assert res.exit_code == 1
    assert json.loads(res.stderr)["error"].startswith("Password is too weak")


def test_new_keys_accept_weak_password(tmp_path):
    res = run(["new-keys", "-n", "k", "-o", str(tmp_path), "-p", "weak", "--accept-weak-password"])
    assert res.exit_code == 0, res.output
    SecretKey.load(tmp_path / "k", "weak")


def test_new_keys_refuses_to_overwrite(tmp_path):
    assert run(["new-keys", "-n", "k", "-o", str(tmp_path), "-p", STRONG]).exit_code == 0
    before = {p: p.read_bytes() for p in tmp_path.iterdir()}
    res = run(["new-keys", "-n", "k", "-o", str(tmp_path), "-p", STRONG, "-a", "ed25519"])
    _assert_error(res, "Refusing to overwrite")
    assert {p: p.read_bytes() for p in tmp_path.iterdir()} == before
    # Only the .pub exists: still refused, and no secret key appears.
    (tmp_path / "lonely.pub").write_text("x")
    res = run(["new-keys", "-n", "lonely", "-o", str(tmp_path), "-p", STRONG])
    _assert_error(res, "Refusing to overwrite")
    assert not (tmp_path / "lonely").exists()


def test_new_keys_output_dir_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    res = run(["new-keys", "-n", "k", "-o", str(f), "-p", STRONG])
    assert res.exit_code == 1
    assert f.read_text() == ""


def test_new_keys_interactive_prompt_on_a_terminal(tmp_path):
    """A real pseudo-terminal: prompt, confirmation, then the keys."""
    out = tmp_path / "tty"
    exe = Path(sys.executable).with_name("asfaload")
    transcript = _run_on_pty(
        [str(exe), "new-keys", "-n", "k", "-o", str(out)], answers=[STRONG, STRONG]
    )
    # The prompt names the key it protects: a person with several keys knows which one.
    assert f"Password for the new key {out / 'k'}:" in transcript and "Confirmation:" in transcript
    assert "Public key saved at" in transcript
    SecretKey.load(out / "k", STRONG)


def test_new_keys_interactive_confirmation_mismatch(tmp_path):
    out = tmp_path / "tty"
    exe = Path(sys.executable).with_name("asfaload")
    transcript = _run_on_pty(
        [str(exe), "new-keys", "-n", "k", "-o", str(out)], answers=[STRONG, STRONG + "x"]
    )
    assert "Error: Password confirmation does not match" in transcript
    assert listing(out) == []


def _run_on_pty(argv, answers):
    env = dict(os.environ, ASFALOAD_INSECURE_TEST_KDF_PARAMS="8,1,1")
    return on_pty(argv, answers, env, timeout=30)[1]


# --- sign-file / verify-sig -------------------------------------------------------------------------
@pytest.fixture
def artifact(tmp_path):
    f = tmp_path / "tool.tar.gz"
    f.write_bytes(b"artifact content\n" * 50)
    return f


def test_sign_and_verify_with_reference_key(tmp_path, artifact, reference_keys_dir, run_minisign):
    res = run(
        ["sign-file", str(artifact), "-K", str(reference_keys_dir / "key_0")],
        env={"ASFALOAD_SIGN_FILE_PASSWORD": "password"},
    )
    assert res.exit_code == 0, res.output
    sig = Path(str(artifact) + ".minisig")
    assert res.stdout == f"Signature written to {sig}\n"
    pub = reference_keys_dir / "key_0.pub"
    res = run(["verify-sig", str(artifact), "-s", str(sig), "-k", str(pub)])
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("Signature verification successful!")
    assert res.stdout.count("\n") == 1
    # minisign accepts it over the digest bytes.
    digest = tmp_path / "digest"
    digest.write_bytes(sha512_file(artifact))
    assert run_minisign("-V", "-p", str(pub), "-m", str(digest), "-x", str(sig)).returncode == 0
    # Key given as a string; JSON output.
    key = PublicKey.from_file(pub)
    res = run(["verify-sig", str(artifact), "-s", str(sig), "-k", str(key), "--json"])
    assert json.loads(res.stdout) == {
        "verified": True,
        "public_key": str(key),
        "key_id": key.key_id,
        "covers": "sha512-digest",
    }
    # Wrong key, tampered file.
    res = run(
        ["verify-sig", str(artifact), "-s", str(sig), "-k", str(reference_keys_dir / "key_1.pub")]
    )
    _assert_error(res, "Signature verification failed")
    artifact.write_bytes(b"tampered")
    res = run(["verify-sig", str(artifact), "-s", str(sig), "-k", str(pub)])
    _assert_error(res, "Signature verification failed")


def test_sign_file_wrong_password_and_no_overwrite(tmp_path, artifact, reference_keys_dir):
    key = str(reference_keys_dir / "key_0")
    res = run(["sign-file", str(artifact), "-K", key, "-p", "nope"])
    _assert_error(res, "Wrong password")
    assert not Path(str(artifact) + ".minisig").exists()
    out = tmp_path / "sig"
    out.write_text("keep")
    res = run(["sign-file", str(artifact), "-K", key, "-p", "password", "-o", str(out)])
    _assert_error(res, "Refusing to overwrite")
    assert out.read_text() == "keep"
    res = run(["sign-file", str(artifact), "-K", key])
    _assert_error(res, "ASFALOAD_SIGN_FILE_PASSWORD")


def test_sign_file_corrupt_key(tmp_path, artifact):
    bad = tmp_path / "bad.key"
    bad.write_text("untrusted comment: x\nAAAA\n")
    res = run(["sign-file", str(artifact), "-K", str(bad), "-p", "x"])
    _assert_error(res, "length")
    res = run(["sign-file", str(artifact), "-K", str(tmp_path / "missing"), "-p", "x"])
    _assert_error(res, "not found")


def test_ed25519_sign_and_verify(tmp_path, artifact):
    assert (
        run(["new-keys", "-n", "ed", "-o", str(tmp_path), "-a", "ed25519", "-p", STRONG]).exit_code
        == 0
    )
    res = run(["sign-file", str(artifact), "-K", str(tmp_path / "ed"), "-p", STRONG, "--json"])
    assert res.exit_code == 0, res.output
    sig = Path(json.loads(res.stdout)["signature_file"])
    assert sig == Path(str(artifact) + ".sig.json")
    doc = json.loads(sig.read_text())
    assert doc["format"] == "ed25519"
    res = run(["verify-sig", str(artifact), "-s", str(sig), "-k", str(tmp_path / "ed.pub")])
    assert res.exit_code == 0, res.output
    res = run(
        ["verify-sig", str(artifact), "-s", str(sig), "-k", str(tmp_path / "ed.pub"), "--json"]
    )
    assert json.loads(res.stdout)["verified"] is True


def test_verify_with_minisign_generated_key(
    tmp_path, artifact, minisign_tool_keypair, run_minisign
):
    """A password-protected key made by `minisign -G`: asfaload signs with it, verify-sig accepts;
    the tool's own signature of the file verifies too."""
    pub, sec, password = minisign_tool_keypair
    res = run(
        [
            "sign-file",
            str(artifact),
            "-K",
            str(sec),
            "-p",
            password,
            "-o",
            str(tmp_path / "ours.minisig"),
        ]
    )
    assert res.exit_code == 0, res.output
    res = run(["verify-sig", str(artifact), "-s", str(tmp_path / "ours.minisig"), "-k", str(pub)])
    assert res.exit_code == 0, res.output
    assert "SHA-512 digest" in res.stdout
    # ...and minisign itself accepts that signature over the digest bytes.
    digest = tmp_path / "digest"
    digest.write_bytes(sha512_file(artifact))
    res = run_minisign(
        "-V", "-p", str(pub), "-m", str(digest), "-x", str(tmp_path / "ours.minisig")
    )
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("legacy", [False, True])
def test_verify_minisign_tool_file_signature(
    artifact, minisign_tool_unencrypted_keypair, run_minisign, legacy
):
    pub, sec = minisign_tool_unencrypted_keypair
    args = ["-S", "-s", str(sec), "-m", str(artifact)] + (["-l"] if legacy else [])
    assert run_minisign(*args).returncode == 0
    res = run(
        ["verify-sig", str(artifact), "-s", str(artifact) + ".minisig", "-k", str(pub), "--json"]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["covers"] == "file-content"
    # Unencrypted (-W) keys sign without any password source.
    res = run(["sign-file", str(artifact), "-K", str(sec), "-o", str(artifact) + ".ours"])
    assert res.exit_code == 0, res.output


def test_verify_against_signers_file(tmp_path, artifact, reference_keys_dir):
    keys = [PublicKey.from_file(reference_keys_dir / f"key_{i}.pub") for i in range(3)]
    signers = {
        "version": 1,
        "timestamp": "2025-01-01T00:00:00Z",
        "artifact_signers": [
            {
                "signers": [{"kind": "key", "data": {"pubkey": str(k)}} for k in keys[:2]],
                "threshold": 1,
            }
        ],
        "admin_keys": [
            {"signers": [{"kind": "key", "data": {"pubkey": str(keys[2])}}], "threshold": 1}
        ],
    }
    sf = tmp_path / "signers.json"
    sf.write_text(json.dumps(signers, indent=2) + "\n")
    for i in (1, 2):
        res = run(
            [
                "sign-file",
                str(artifact),
                "-K",
                str(reference_keys_dir / f"key_{i}"),
                "-p",
                "password",
            ]
            + ["-o", str(tmp_path / f"sig{i}")]
        )
        assert res.exit_code == 0, res.output
    res = run(
        [
            "verify-sig",
            str(artifact),
            "-s",
            str(tmp_path / "sig1"),
            "--signers-file",
            str(sf),
            "--json",
        ]
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["public_key"] == str(keys[1])
    # key_2 is only an admin: not an artifact signer.
    res = run(
        ["verify-sig", str(artifact), "-s", str(tmp_path / "sig2"), "--signers-file", str(sf)]
    )
    _assert_error(res, "not from an artifact signer")


def test_verify_sig_needs_exactly_one_key_source(tmp_path, artifact, reference_keys_dir):
    sig = tmp_path / "s"
    sig.write_text("x")
    res = run(["verify-sig", str(artifact), "-s", str(sig)])
    _assert_error(res, "exactly one")


def test_verify_sig_garbage_signature(tmp_path, artifact, reference_keys_dir):
    sig = tmp_path / "s"
    sig.write_text("untrusted comment: hello\ngarbage\n")
    res = run(
        ["verify-sig", str(artifact), "-s", str(sig), "-k", str(reference_keys_dir / "key_0.pub")]
    )
    _assert_error(res, "")


def test_console_script_error_exit_code(tmp_path):
    exe = Path(sys.executable).with_name("asfaload")
    proc = subprocess.run(
        [str(exe), "new-keys", "-n", "k", "-o", str(tmp_path), "-a", "rsa", "-p", STRONG],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: Unknown algorithm") and proc.stderr.count("\n") == 1
    assert proc.stdout == ""
